"""A generic OData V4 client that nobody here wrote (PyPI `python-odata`) against the NAV sandbox.

If the sandbox only worked with shipnav's own client, the two could share a misunderstanding of
OData. python-odata reflects the `$metadata`, builds its own `$filter` strings and URLs, follows
`@odata.nextLink`, and PATCHes the way a generic client does (without `If-Match`), so it checks
the sandbox against the standard and the documented NAV behaviour.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from odata import ODataService
from odata.exceptions import ODataError

from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld


def add_order(world: SandboxWorld, no: str, **fields: Any) -> dict[str, Any]:
    record = {"Document_Type": "Order", "No": no, "Status": "Open", "Sell_to_Customer_Name": f"Customer {no}"}
    record.update(fields)
    world.nav.stamp(record)
    world.nav.sales_orders[no] = record
    return record


@pytest.fixture
def session(empty_world: SandboxWorld) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.auth = (empty_world.nav.username, empty_world.nav.password)
        yield s


def reflect(sandbox: SandboxServers, session: requests.Session) -> ODataService:
    return ODataService(sandbox.nav_odata_url, reflect_entities=True, session=session, quiet_progress=True)


def test_python_odata_reflects_the_metadata(
    sandbox: SandboxServers, empty_world: SandboxWorld, session: requests.Session
) -> None:
    service = reflect(sandbox, session)
    assert {"SalesOrder", "PostedSalesShipment"} <= set(service.entities)
    order = service.entities["SalesOrder"]
    entity = order.__new__(order)  # an empty instance exposes the reflected key properties
    assert [p.name for _n, p in entity.__odata__.primary_key_properties] == ["Document_Type", "No"]
    assert hasattr(order, "Package_Tracking_No") and hasattr(order, "SalesOrderSalesLines")


def test_python_odata_filters_on_a_name_with_quote_and_ampersand(
    sandbox: SandboxServers, empty_world: SandboxWorld, session: requests.Session
) -> None:
    add_order(empty_world, "SO-1", Sell_to_Customer_Name="O'Brien & Sons")
    add_order(empty_world, "SO-2", Sell_to_Customer_Name="O'Brien")
    add_order(empty_world, "SO-3", Sell_to_Customer_Name="Müller-Lüdenscheid GmbH")
    service = reflect(sandbox, session)
    order = service.entities["SalesOrder"]
    found = service.query(order).filter(order.Sell_to_Customer_Name == "O'Brien & Sons").all()
    assert [o.No for o in found] == ["SO-1"]
    sent = [q for m, _p, q, _s in empty_world.nav.log.entries if m == "GET" and "$filter" in q]
    assert "Sell_to_Customer_Name eq 'O''Brien & Sons'" in sent[0]  # python-odata's own quoting
    accents = service.query(order).filter(order.Sell_to_Customer_Name == "Müller-Lüdenscheid GmbH").all()
    assert [o.No for o in accents] == ["SO-3"]


def test_python_odata_reads_a_collection_across_pages(
    sandbox: SandboxServers, empty_world: SandboxWorld, session: requests.Session
) -> None:
    empty_world.nav.max_page_size = 3
    for n in range(8):
        add_order(empty_world, f"P{n}")
    service = reflect(sandbox, session)
    rows = service.query(service.entities["SalesOrder"]).all()
    assert sorted(o.No for o in rows) == [f"P{n}" for n in range(8)]
    assert empty_world.nav.log.count("GET", "/SalesOrder") == 3  # 3 + 3 + 2, via @odata.nextLink


def test_python_odata_patch_without_if_match_is_refused(
    sandbox: SandboxServers, empty_world: SandboxWorld, session: requests.Session
) -> None:
    add_order(empty_world, "SO-1")
    service = reflect(sandbox, session)
    order_cls = service.entities["SalesOrder"]
    order = service.query(order_cls).filter(order_cls.No == "SO-1").first()
    order.Package_Tracking_No = "1Z999AA10123456784"
    with pytest.raises(ODataError) as caught:
        service.save(order)  # python-odata sends no If-Match
    assert caught.value.code == "BadRequest_InvalidToken"
    assert caught.value.status_code == "HTTP 400"
    assert empty_world.nav.sales_orders["SO-1"].get("Package_Tracking_No", "") == ""
    # The same generic client succeeds once it sends the entity's ETag, as NAV requires.
    etag = service.query(order_cls).filter(order_cls.No == "SO-1").select(order_cls.No).first()["@odata.etag"]
    service.default_context.save(order, extra_headers={"If-Match": etag})
    assert empty_world.nav.sales_orders["SO-1"]["Package_Tracking_No"] == "1Z999AA10123456784"
