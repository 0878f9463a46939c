"""The NAV emulator over real HTTP with a plain httpx client: it behaves as NAV is documented to.

These tests do not use shipnav's NAV client on purpose: they pin the sandbox to the documented
server behaviour (docs/api-notes.md), so the client is tested against NAV, not against itself.
"""

import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld

EDM = {"edmx": "http://docs.oasis-open.org/odata/ns/edmx", "edm": "http://docs.oasis-open.org/odata/ns/edm"}
CORRELATION = re.compile(r"  CorrelationId:  [0-9a-f-]{36}\.$")


def add_order(world: SandboxWorld, no: str, **fields: Any) -> dict[str, Any]:
    record = {"Document_Type": "Order", "No": no, "Status": "Open", "Sell_to_Customer_Name": f"Customer {no}"}
    record.update(fields)
    world.nav.stamp(record)
    world.nav.sales_orders[no] = record
    return record


def add_line(
    world: SandboxWorld, no: str, line_no: int, quantity: float, shipped: float = 0
) -> dict[str, Any]:
    line = {
        "Document_Type": "Order",
        "Document_No": no,
        "Line_No": line_no,
        "Type": "Item",
        "No": "1896-S",
        "Quantity": quantity,
        "Qty_to_Ship": quantity - shipped,
        "Quantity_Shipped": shipped,
        "Shipment_Date": "2024-05-02",
    }
    world.nav.stamp(line)
    world.nav.sales_lines.setdefault(no, []).append(line)
    return line


def add_posted(world: SandboxWorld, no: str, order_no: str, **fields: Any) -> dict[str, Any]:
    record = {"No": no, "Order_No": order_no, "Posting_Date": "2024-05-03"}
    record.update(fields)
    world.nav.stamp(record)
    world.nav.posted_shipments[no] = record
    return record


@pytest.fixture
def world(empty_world: SandboxWorld) -> SandboxWorld:
    empty_world.nav.shipping_agents = {"UPS": {"GROUND", "NEXTDAY"}, "FEDEX": {"EXPRESS"}}
    return empty_world


@pytest.fixture
def http(sandbox: SandboxServers, world: SandboxWorld) -> Iterator[httpx.Client]:
    """A Basic-authenticated client rooted at the OData service root."""
    auth = (world.nav.username, world.nav.password)
    with httpx.Client(base_url=sandbox.nav_odata_url + "/", auth=auth, timeout=10) as client:
        yield client


def order_url(no: str) -> str:
    return f"SalesOrder(Document_Type='Order',No='{no}')"


def error_of(response: httpx.Response) -> tuple[str, str]:
    error = response.json()["error"]
    assert CORRELATION.search(error["message"]), error["message"]
    return error["code"], error["message"]


# --- metadata and service document -----------------------------------------------------------


def test_metadata_describes_published_pages(http: httpx.Client, world: SandboxWorld) -> None:
    world.nav.tracking_max_length = 50
    response = http.get("$metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    schema = root.find("edmx:DataServices/edm:Schema", EDM)
    assert schema is not None and schema.get("Namespace") == "NAV"
    types = {t.get("Name"): t for t in schema.findall("edm:EntityType", EDM)}
    assert set(types) == {"SalesOrder", "SalesOrderSalesLines", "PostedSalesShipment"}
    keys = [k.get("Name") for k in types["SalesOrder"].findall("edm:Key/edm:PropertyRef", EDM)]
    assert keys == ["Document_Type", "No"]
    line_keys = {k.get("Name") for k in types["SalesOrderSalesLines"].findall("edm:Key/edm:PropertyRef", EDM)}
    assert line_keys == {"Document_Type", "Document_No", "Line_No"}
    props = {p.get("Name"): p for p in types["SalesOrder"].findall("edm:Property", EDM)}
    assert props["Package_Tracking_No"].get("MaxLength") == "50"
    assert props["Shipping_Agent_Code"].get("MaxLength") == "10"
    assert props["Order_Date"].get("Type") == "Edm.Date"
    nav = types["SalesOrder"].find("edm:NavigationProperty", EDM)
    assert nav is not None and nav.get("Name") == "SalesOrderSalesLines"
    assert nav.get("ContainsTarget") == "true"
    container = schema.find("edm:EntityContainer", EDM)
    assert container is not None and container.get("Name") == "NAV"
    sets = {s.get("Name") for s in container.findall("edm:EntitySet", EDM)}
    assert sets == {"SalesOrder", "PostedSalesShipment"}


def test_service_document_lists_published_services(http: httpx.Client, world: SandboxWorld) -> None:
    world.nav.published = {"SalesOrder"}
    body = http.get("").json()
    assert [s["name"] for s in body["value"]] == ["SalesOrder"]
    assert body["@odata.context"].endswith("/$metadata")
    response = http.get("PostedSalesShipment")
    assert response.status_code == 404
    assert error_of(response)[0] == "BadRequest_ResourceNotFound"


# --- authentication --------------------------------------------------------------------------


def test_requests_without_valid_credentials_get_401(sandbox: SandboxServers, world: SandboxWorld) -> None:
    for auth in (None, ("SANDBOX", "wrong"), None):
        response = httpx.get(sandbox.nav_odata_url + "/SalesOrder", auth=auth)
        assert response.status_code == 401
        assert "WWW-Authenticate" in response.headers
        code, message = error_of(response)
        assert code == "Authentication_InvalidCredentials"
        assert message.startswith("The server has rejected the client credentials.")
    bearer = httpx.get(sandbox.nav_odata_url + "/SalesOrder", headers={"Authorization": "Bearer made-up"})
    assert bearer.status_code == 401


def _token_form(world: SandboxWorld, **overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": world.nav.client_id,
        "client_secret": world.nav.client_secret,
        "scope": "https://api.businesscentral.dynamics.com/.default",
    }
    form.update(overrides)
    return form


def test_token_endpoint_issues_expiring_bearer_tokens(sandbox: SandboxServers, world: SandboxWorld) -> None:
    world.nav.token_ttl_seconds = 120
    response = httpx.post(sandbox.nav_token_url, data=_token_form(world))
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 120
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(sandbox.nav_odata_url + "/SalesOrder", headers=headers).status_code == 200
    world.nav.expire_tokens()
    assert httpx.get(sandbox.nav_odata_url + "/SalesOrder", headers=headers).status_code == 401


def test_token_endpoint_rejects_bad_clients(sandbox: SandboxServers, world: SandboxWorld) -> None:
    wrong = httpx.post(sandbox.nav_token_url, data=_token_form(world, client_secret="nope"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.json()["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    unknown = httpx.post(sandbox.nav_token_url, data=_token_form(world, client_id="someone-else"))
    assert unknown.status_code == 400 and unknown.json()["error"] == "unauthorized_client"
    scope = httpx.post(sandbox.nav_token_url, data=_token_form(world, scope="api://bc"))
    assert scope.status_code == 400 and scope.json()["error"] == "invalid_scope"


def test_unregistered_app_tokens_are_refused(sandbox: SandboxServers, world: SandboxWorld) -> None:
    world.nav.app_registered = False
    token = httpx.post(sandbox.nav_token_url, data=_token_form(world)).json()["access_token"]
    response = httpx.get(sandbox.nav_odata_url + "/SalesOrder", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


# --- reading ---------------------------------------------------------------------------------


def test_filter_literals_with_quotes_ampersands_and_accents(http: httpx.Client, world: SandboxWorld) -> None:
    names = ["O'Brien & Sons", "Müller-Lüdenscheid GmbH", "100% #1 + Co?", "Plain"]
    for n, name in enumerate(names):
        add_order(world, f"S-{n}", Sell_to_Customer_Name=name)
    for n, name in enumerate(names):
        literal = "'" + name.replace("'", "''") + "'"
        rows = http.get("SalesOrder", params={"$filter": f"Sell_to_Customer_Name eq {literal}"}).json()[
            "value"
        ]
        assert [r["No"] for r in rows] == [f"S-{n}"], name


def test_filter_operators_dates_numbers_and_functions(http: httpx.Client, world: SandboxWorld) -> None:
    add_order(world, "A", Order_Date="2024-05-01", External_Document_No="EXT-1")
    add_order(world, "B", Order_Date="2024-05-03", External_Document_No="EXT-2")
    add_order(world, "C", Order_Date="2024-05-05", External_Document_No="OTHER")
    add_line(world, "A", 10000, 5)
    add_line(world, "A", 20000, 1)

    def nos(expr: str, path: str = "SalesOrder", key: str = "No") -> list[Any]:
        response = http.get(path, params={"$filter": expr})
        assert response.status_code == 200, response.text
        return [r[key] for r in response.json()["value"]]

    assert nos("Order_Date ge 2024-05-02 and Order_Date le 2024-05-05") == ["B", "C"]
    assert nos("(No eq 'A' or No eq 'C') and Status eq 'Open'") == ["A", "C"]
    assert nos("startswith(External_Document_No,'EXT')") == ["A", "B"]
    assert nos("No ne 'B'") == ["A", "C"]
    assert nos("Completely_Shipped eq false") == ["A", "B", "C"]
    assert nos("Quantity gt 2", order_url("A") + "/SalesOrderSalesLines", "Line_No") == [10000]


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        ("No eq 'A' or Status eq 'Open'", "BadRequest_NotSupported"),
        ("No eq", "BadRequest_NotFound"),
        ("No eq 'unterminated", "BadRequest_NotFound"),
        ("Order_Date eq '2024-05-01'", "BadRequest_NotFound"),
        ("Nonexistent eq 'x'", "BadRequest_NotFound"),
        ("No eq No", "BadRequest_NotFound"),
    ],
)
def test_invalid_filters_are_rejected(http: httpx.Client, world: SandboxWorld, expr: str, code: str) -> None:
    add_order(world, "A")
    response = http.get("SalesOrder", params={"$filter": expr})
    assert response.status_code == 400
    assert error_of(response)[0] == code
    if code == "BadRequest_NotSupported":
        assert "The 'OR' operator is not supported on distinct fields on an OData filter" in response.text


def test_select_returns_only_the_selected_fields_and_the_etag(
    http: httpx.Client, world: SandboxWorld
) -> None:
    add_order(world, "A", _secret_internal="x")
    row = http.get("SalesOrder", params={"$select": "No,Status"}).json()["value"][0]
    assert set(row) == {"@odata.etag", "No", "Status"}
    assert row["@odata.etag"].startswith('W/"')
    full = http.get(order_url("A")).json()
    assert "_version" not in full and "_secret_internal" not in full
    assert full["Shipment_Date"] == "0001-01-01"  # a blank NAV date
    unknown = http.get("SalesOrder", params={"$select": "No,Bogus"})
    assert unknown.status_code == 400


def test_server_driven_paging_with_prefer_and_with_server_max(
    http: httpx.Client, world: SandboxWorld
) -> None:
    for n in range(7):
        add_order(world, f"P{n}")
    response = http.get("SalesOrder", params={"$select": "No"}, headers={"Prefer": "odata.maxpagesize=3"})
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=3"
    seen, pages = [], 0
    body = response.json()
    while True:
        pages += 1
        seen += [r["No"] for r in body["value"]]
        link = body.get("@odata.nextLink")
        if not link:
            break
        assert link.startswith("http://") and "$skiptoken=" in link
        body = http.get(link, headers={"Prefer": "odata.maxpagesize=3"}).json()
    assert seen == [f"P{n}" for n in range(7)] and pages == 3
    world.nav.max_page_size = 5
    capped = http.get("SalesOrder", headers={"Prefer": "odata.maxpagesize=100"})
    assert len(capped.json()["value"]) == 5
    assert capped.headers["Preference-Applied"] == "odata.maxpagesize=5"
    assert "Preference-Applied" not in http.get("SalesOrder").headers


def test_entity_by_key_and_missing_records(http: httpx.Client, world: SandboxWorld) -> None:
    add_order(world, "A")
    add_posted(world, "102001", "A")
    add_line(world, "A", 10000, 2)
    assert http.get(order_url("A")).json()["No"] == "A"
    assert http.get("PostedSalesShipment('102001')").json()["Order_No"] == "A"
    assert http.get("PostedSalesShipment(No='102001')").json()["No"] == "102001"
    line = http.get(
        order_url("A") + "/SalesOrderSalesLines(Document_Type='Order',Document_No='A',Line_No=10000)"
    )
    assert line.json()["Quantity"] == 2
    for path in (order_url("ZZZ"), "PostedSalesShipment('nope')", "SalesOrder(Document_Type='Quote',No='A')"):
        response = http.get(path)
        assert response.status_code == 404
        assert error_of(response)[0] == "Internal_RecordNotFound"
    assert http.get("SalesOrder('A')").status_code == 400  # a two-part key needs both names


# --- PATCH rules -----------------------------------------------------------------------------


def etag_of(http: httpx.Client, path: str) -> str:
    return http.get(path).json()["@odata.etag"]


def test_patch_requires_if_match_and_rejects_stale_etags(http: httpx.Client, world: SandboxWorld) -> None:
    add_order(world, "A")
    missing = http.patch(order_url("A"), json={"Package_Tracking_No": "1Z1"})
    assert missing.status_code == 400
    code, message = error_of(missing)
    assert code == "BadRequest_InvalidToken"
    assert message.startswith("Could not validate the client concurrency token required by the service")
    etag = etag_of(http, order_url("A"))
    first = http.patch(order_url("A"), json={"Package_Tracking_No": "1Z1"}, headers={"If-Match": etag})
    assert first.status_code == 200
    assert first.json()["Package_Tracking_No"] == "1Z1"
    assert first.json()["@odata.etag"] != etag
    stale = http.patch(order_url("A"), json={"Package_Tracking_No": "1Z2"}, headers={"If-Match": etag})
    assert stale.status_code == 409
    code, message = error_of(stale)
    assert code == "Request_EntityChanged"
    assert message.startswith("Another user has already changed the record.")
    star = http.patch(order_url("A"), json={"Package_Tracking_No": "1Z3"}, headers={"If-Match": "*"})
    assert star.status_code == 200  # documented, though shipnav never sends it
    assert world.nav.sales_orders["A"]["Package_Tracking_No"] == "1Z3"


def _patch(http: httpx.Client, path: str, body: Any) -> httpx.Response:
    return http.patch(path, json=body, headers={"If-Match": etag_of(http, path)})


def test_released_orders_lock_agent_service_and_date_but_not_tracking(
    http: httpx.Client, world: SandboxWorld
) -> None:
    add_order(world, "R", Status="Released")
    for body in (
        {"Shipping_Agent_Code": "UPS"},
        {"Shipping_Agent_Service_Code": ""},
        {"Shipment_Date": "2024-06-01"},
    ):
        response = _patch(http, order_url("R"), body)
        assert response.status_code == 400
        code, message = error_of(response)
        assert code == "Application_FieldValidationException"
        assert message.startswith(
            "Status must be equal to 'Open'  in Sales Header: Document Type=Order, No.=R."
        )
    ok = _patch(http, order_url("R"), {"Package_Tracking_No": "1ZRELEASED"})
    assert ok.status_code == 200 and ok.json()["Package_Tracking_No"] == "1ZRELEASED"


def test_field_lengths_relations_and_read_only_controls(http: httpx.Client, world: SandboxWorld) -> None:
    add_order(world, "A", Shipping_Agent_Code="UPS", Shipping_Agent_Service_Code="GROUND")
    too_long = _patch(http, order_url("A"), {"Package_Tracking_No": "X" * 31})
    assert too_long.status_code == 400
    assert error_of(too_long)[0] == "Application_StringExceededLength"
    world.nav.tracking_max_length = 50
    assert _patch(http, order_url("A"), {"Package_Tracking_No": "X" * 31}).status_code == 200
    agent = _patch(http, order_url("A"), {"Shipping_Agent_Code": "ACME"})
    assert agent.status_code == 400 and error_of(agent)[0] == "Internal_InvalidTableRelation"
    service = _patch(http, order_url("A"), {"Shipping_Agent_Service_Code": "EXPRESS"})  # FedEx's, not UPS's
    assert service.status_code == 400 and error_of(service)[0] == "Internal_InvalidTableRelation"
    for body in ({"Status": "Released"}, {"No": "B"}, {"Completely_Shipped": True}):
        response = _patch(http, order_url("A"), body)
        assert response.status_code == 400 and error_of(response)[0] == "BadRequest_InvalidOperation"
    unknown = _patch(http, order_url("A"), {"Bogus": 1})
    assert unknown.status_code == 400
    malformed = http.patch(
        order_url("A"), content=b"{not json", headers={"If-Match": etag_of(http, order_url("A"))}
    )
    assert malformed.status_code == 400
    assert world.nav.sales_orders["A"]["Shipping_Agent_Code"] == "UPS"  # nothing partial was saved


def test_agent_change_clears_service_and_reaches_the_lines(http: httpx.Client, world: SandboxWorld) -> None:
    add_order(world, "A", Shipping_Agent_Code="UPS", Shipping_Agent_Service_Code="GROUND")
    line = add_line(world, "A", 10000, 2)
    line_etag = world.nav.etag(line)
    changed = _patch(http, order_url("A"), {"Shipping_Agent_Code": "fedex"})
    assert changed.status_code == 200
    assert changed.json()["Shipping_Agent_Code"] == "FEDEX"  # Code fields are upper-cased
    assert changed.json()["Shipping_Agent_Service_Code"] == ""
    both = _patch(
        http, order_url("A"), {"Shipping_Agent_Code": "UPS", "Shipping_Agent_Service_Code": "NEXTDAY"}
    )
    assert both.json()["Shipping_Agent_Service_Code"] == "NEXTDAY"
    assert line["Shipping_Agent_Code"] == "UPS" and world.nav.etag(line) != line_etag


def test_line_quantity_rules(http: httpx.Client, world: SandboxWorld) -> None:
    add_order(world, "A")
    add_line(world, "A", 10000, 5, shipped=2)
    path = order_url("A") + "/SalesOrderSalesLines(Document_Type='Order',Document_No='A',Line_No=10000)"
    assert _patch(http, path, {"Qty_to_Ship": 3}).json()["Qty_to_Ship"] == 3
    over = _patch(http, path, {"Qty_to_Ship": 4})
    assert over.status_code == 400 and error_of(over)[0].startswith("Application_")
    negative = _patch(http, path, {"Qty_to_Ship": -1})
    assert negative.status_code == 400 and error_of(negative)[0].startswith("Application_")
    shipped = _patch(http, path, {"Quantity_Shipped": 5})
    assert error_of(shipped)[0] == "BadRequest_InvalidOperation"
    world.nav.sales_orders["A"]["Status"] = "Released"
    assert _patch(http, path, {"Qty_to_Ship": 1}).status_code == 200  # no TestStatusOpen on Qty. to Ship
    date = _patch(http, path, {"Shipment_Date": "2024-06-01"})
    assert error_of(date)[0] == "Application_FieldValidationException"


def test_posted_shipment_edits_only_the_three_codeunit_391_fields(
    http: httpx.Client, world: SandboxWorld
) -> None:
    add_order(world, "A")
    add_posted(world, "102001", "A")
    path = "PostedSalesShipment('102001')"
    ok = _patch(
        http,
        path,
        {"Package_Tracking_No": "1Z9", "Shipping_Agent_Code": "UPS", "Shipping_Agent_Service_Code": "GROUND"},
    )
    assert ok.status_code == 200 and ok.json()["Package_Tracking_No"] == "1Z9"
    assert error_of(_patch(http, path, {"Order_No": "B"}))[0] == "BadRequest_InvalidOperation"
    assert error_of(_patch(http, path, {"Shipping_Agent_Code": "ZZ"}))[0] == "Internal_InvalidTableRelation"
    assert (
        error_of(_patch(http, path, {"Package_Tracking_No": "9" * 40}))[0]
        == "Application_StringExceededLength"
    )


# --- faults ----------------------------------------------------------------------------------


def test_fault_injection(http: httpx.Client, world: SandboxWorld) -> None:
    add_order(world, "A")
    world.nav.faults.fail_next, world.nav.faults.fail_status = 1, 503
    unavailable = http.get("SalesOrder")
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "1"
    world.nav.faults.throttle_next = 1
    assert http.get("SalesOrder").status_code == 429
    world.nav.faults.fail_next, world.nav.faults.fail_status, world.nav.faults.fail_paths = (
        1,
        500,
        ("Posted",),
    )
    assert http.get("SalesOrder").status_code == 200  # not a targeted path
    assert http.get("PostedSalesShipment").status_code == 500
    world.nav.faults.fail_paths = ()
    world.nav.faults.concurrent_edit_next = 1
    assert _patch(http, order_url("A"), {"Package_Tracking_No": "1Z"}).status_code == 409
    world.nav.faults.rate_limit_per_minute = 2
    statuses = [http.get("SalesOrder").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert world.nav.log.count("GET", "/SalesOrder") >= 6


def test_dropped_connection_after_the_write_landed(http: httpx.Client, world: SandboxWorld) -> None:
    add_order(world, "A")
    etag = etag_of(http, order_url("A"))
    world.nav.faults.drop_next = 1
    with pytest.raises(httpx.RemoteProtocolError):
        http.patch(order_url("A"), json={"Package_Tracking_No": "1ZDROP"}, headers={"If-Match": etag})
    assert world.nav.sales_orders["A"]["Package_Tracking_No"] == "1ZDROP"  # applied, answer lost
    retry = http.patch(order_url("A"), json={"Package_Tracking_No": "1ZDROP"}, headers={"If-Match": etag})
    assert retry.status_code == 409  # the ETag makes a blind repeat fail safely


def test_latency_lets_requests_overlap_and_peak_is_tracked(
    sandbox: SandboxServers, http: httpx.Client, world: SandboxWorld
) -> None:
    add_order(world, "A")
    world.nav.faults.latency_ms = 150
    barrier = threading.Barrier(4)

    def one(_: int) -> int:
        barrier.wait()
        return http.get("SalesOrder").status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(4))) == [200] * 4
    assert world.nav.max_in_flight >= 2
    assert world.nav.in_flight == 0


def test_admin_endpoints(sandbox: SandboxServers, world: SandboxWorld) -> None:
    base = sandbox.nav_base_url
    set_faults = httpx.post(f"{base}/_sandbox/faults", json={"fail_next": 2, "fail_status": 503})
    assert set_faults.status_code == 200 and set_faults.json()["fail_next"] == 2
    assert world.nav.faults.fail_next == 2 and world.nav.faults.fail_status == 503
    assert httpx.post(f"{base}/_sandbox/faults", json={"bogus": 1}).status_code == 400
    token = httpx.post(sandbox.nav_token_url, data=_token_form(world)).json()["access_token"]
    assert httpx.post(f"{base}/_sandbox/expire-tokens").json()["expired"] == 1
    assert world.nav.tokens[token] == 0.0
    stats = httpx.get(f"{base}/_sandbox/stats").json()
    assert stats["token_requests"] == 1 and stats["max_in_flight"] >= 1
    assert stats["faults"]["fail_next"] == 2
