"""The NAV emulator's refusals and platform differences over real HTTP, with a plain httpx client.

Over-long filter literals, $metadata lengths, NAV 2018 vs Business Central (page 130 editability,
name lengths, JSON $batch), and orders deleted by "Ship and Invoice" posting.
"""

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import BC, NAV2018, SandboxWorld

EDM = {"edmx": "http://docs.oasis-open.org/odata/ns/edmx", "edm": "http://docs.oasis-open.org/odata/ns/edm"}
CORRELATION = re.compile(r"  CorrelationId:  [0-9a-f-]{36}\.$")
OPTION_FIELDS = {"Document_Type", "Status", "Type"}  # Option fields: Edm.String without a length


@pytest.fixture
def world(empty_world: SandboxWorld) -> SandboxWorld:
    sc.install_shipping_agents(empty_world)
    return empty_world


@pytest.fixture
def http(sandbox: SandboxServers, world: SandboxWorld) -> Iterator[httpx.Client]:
    auth = (world.nav.username, world.nav.password)
    with httpx.Client(base_url=sandbox.nav_odata_url + "/", auth=auth, timeout=10) as client:
        yield client


def error_of(response: httpx.Response) -> tuple[str, str]:
    error = response.json()["error"]
    assert CORRELATION.search(error["message"]), error["message"]
    return error["code"], CORRELATION.sub("", error["message"])


def order_url(no: str) -> str:
    return f"SalesOrder(Document_Type='Order',No='{no}')"


def nos(http: httpx.Client, path: str, expr: str) -> list[str]:
    response = http.get(path, params={"$filter": expr, "$select": "No"})
    assert response.status_code == 200, response.text
    return [row["No"] for row in response.json()["value"]]


def new_order(world: SandboxWorld, no: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("customer_name", f"Customer {no}")
    kwargs.setdefault("order_date", date(2026, 3, 10))
    kwargs.setdefault("lines", [("MUG-11OZ-BLK", 2)])
    return sc.add_nav_order(world, no, **kwargs)


# --- over-long filter literals ---------------------------------------------------------------


def test_a_literal_longer_than_no_fails_the_whole_request(http: httpx.Client, world: SandboxWorld) -> None:
    new_order(world, "SO-1")
    literal = "113-1234567-1234567-1"  # 21 characters; No is Code[20]
    response = http.get("SalesOrder", params={"$filter": f"No eq 'SO-1' or No eq '{literal}'"})
    assert response.status_code == 400
    code, message = error_of(response)
    assert code == "Application_FilterErrorException"
    assert message == (
        f"The filter \"='{literal}'\" is not valid for the No. field on the Sales Header table. The length "
        f"of the string is 21, but it must be less than or equal to 20 characters. Value: {literal}."
    )
    assert nos(http, "SalesOrder", "No eq '113-1234567-1234567'") == []  # 19 characters fit


def test_external_document_no_takes_35_characters_not_36(http: httpx.Client, world: SandboxWorld) -> None:
    key = sc.guid_for("order")  # 36 characters
    new_order(world, "SO-1", external_document_no=key[:35])
    assert nos(http, "SalesOrder", f"External_Document_No eq '{key[:35].upper()}'") == ["SO-1"]
    response = http.get("SalesOrder", params={"$filter": f"External_Document_No eq '{key}'"})
    code, message = error_of(response)
    assert response.status_code == 400 and code == "Application_FilterErrorException"
    assert "for the External Document No. field on the Sales Header table" in message
    assert "The length of the string is 36, but it must be less than or equal to 35 characters" in message
    ne = http.get("SalesOrder", params={"$filter": f"External_Document_No ne '{key}'"})
    assert f"The filter \"<>'{key}'\"" in error_of(ne)[1]


def test_customer_name_is_text_50_on_nav_2018_and_text_100_on_bc(
    http: httpx.Client, world: SandboxWorld
) -> None:
    name = "Blue Ridge Outfitters and Provisioners of the Shenandoah Valley LLC"  # 67 characters
    response = http.get("SalesOrder", params={"$filter": f"Sell_to_Customer_Name eq '{name}'"})
    code, message = error_of(response)
    assert code == "Application_FilterErrorException"
    assert "for the Sell-to Customer Name field on the Sales Header table" in message
    assert "must be less than or equal to 50 characters" in message
    sc.set_nav_platform(world, BC)
    assert nos(http, "SalesOrder", f"Sell_to_Customer_Name eq '{name}'") == []


def test_posted_shipments_check_their_own_fields(http: httpx.Client, world: SandboxWorld) -> None:
    response = http.get("PostedSalesShipment", params={"$filter": "Order_No eq '" + "9" * 21 + "'"})
    code, message = error_of(response)
    assert code == "Application_FilterErrorException"
    assert "for the Order No. field on the Sales Shipment Header table" in message


def test_enforced_length_can_be_shorter_than_metadata(http: httpx.Client, world: SandboxWorld) -> None:
    """A server whose field is shorter than its $metadata says (the client's "NAV still refused")."""
    world.nav.filter_length_overrides = {"External_Document_No": 20}
    metadata = ET.fromstring(http.get("$metadata").content)
    prop = metadata.find(
        ".//edm:EntityType[@Name='SalesOrder']/edm:Property[@Name='External_Document_No']", EDM
    )
    assert prop is not None and prop.get("MaxLength") == "35"
    response = http.get("SalesOrder", params={"$filter": "External_Document_No eq '" + "A" * 21 + "'"})
    assert response.status_code == 400
    assert "must be less than or equal to 20 characters" in error_of(response)[1]
    assert nos(http, "SalesOrder", "External_Document_No eq '" + "A" * 20 + "'") == []


def test_the_refusal_can_be_switched_off(http: httpx.Client, world: SandboxWorld) -> None:
    world.nav.enforce_filter_lengths = False
    assert nos(http, "SalesOrder", "No eq '" + "X" * 30 + "'") == []


# --- $metadata -------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", [NAV2018, BC])
def test_metadata_gives_every_string_property_its_length(
    http: httpx.Client, world: SandboxWorld, platform: str
) -> None:
    sc.set_nav_platform(world, platform)
    root = ET.fromstring(http.get("$metadata").content)
    lengths: dict[str, dict[str, str | None]] = {}
    for entity in root.iterfind(".//edm:EntityType", EDM):
        props = entity.findall("edm:Property", EDM)
        lengths[entity.get("Name", "")] = {p.get("Name", ""): p.get("MaxLength") for p in props}
        for prop in props:
            if prop.get("Type") == "Edm.String" and prop.get("Name") not in OPTION_FIELDS:
                assert prop.get("MaxLength"), (entity.get("Name"), prop.get("Name"))
            assert list(prop.iter()) == [prop]  # no invented annotations
    names = "100" if platform == BC else "50"
    assert lengths["SalesOrder"]["Sell_to_Customer_Name"] == names
    assert lengths["PostedSalesShipment"]["Sell_to_Customer_Name"] == names
    assert lengths["SalesOrder"]["Package_Tracking_No"] == ("50" if platform == BC else "30")
    assert lengths["SalesOrder"]["No"] == lengths["PostedSalesShipment"]["Order_No"] == "20"
    assert lengths["PostedSalesShipment"]["External_Document_No"] == "35"


# --- page 130: NAV 2018 (codeunit 391) vs Business Central (read-only) ----------------------


def _patch(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    etag = http.get(path).json()["@odata.etag"]
    return http.patch(path, json=body, headers={"If-Match": etag})


def test_page_130_shipping_fields_are_editable_on_nav_2018(http: httpx.Client, world: SandboxWorld) -> None:
    new_order(world, "SO-1")
    posted = sc.post_nav_shipment(world, "SO-1")
    path = f"PostedSalesShipment('{posted['No']}')"
    body = {
        "Package_Tracking_No": "1Z999",
        "Shipping_Agent_Code": "UPS",
        "Shipping_Agent_Service_Code": "GROUND",
    }
    response = _patch(http, path, body)
    assert response.status_code == 200 and response.json()["Package_Tracking_No"] == "1Z999"


@pytest.mark.parametrize(
    ("field", "value", "control"),
    [
        ("Package_Tracking_No", "1Z999", "Package Tracking No."),
        ("Shipping_Agent_Code", "UPS", "Shipping Agent Code"),
        ("Shipping_Agent_Service_Code", "GROUND", "Shipping Agent Service Code"),
    ],
)
def test_page_130_shipping_fields_are_read_only_on_bc(
    http: httpx.Client, world: SandboxWorld, field: str, value: str, control: str
) -> None:
    sc.set_nav_platform(world, BC)
    new_order(world, "SO-1", shipping_agent_code="UPS")
    posted = sc.post_nav_shipment(world, "SO-1")
    path = f"PostedSalesShipment('{posted['No']}')"
    before = dict(world.nav.posted_shipments[posted["No"]])
    response = _patch(http, path, {field: value} if field != "Shipping_Agent_Code" else {field: "FEDEX"})
    assert response.status_code == 400
    assert error_of(response) == ("BadRequest_InvalidOperation", f"Control '{control}' is read-only.")
    assert world.nav.posted_shipments[posted["No"]] == before
    # Sending a value unchanged is not a change: NAV accepts it.
    same = _patch(http, path, {"Shipping_Agent_Code": "UPS"})
    assert same.status_code == 200


def test_tracking_is_text_50_on_bc(http: httpx.Client, world: SandboxWorld) -> None:
    new_order(world, "SO-1")
    too_long = _patch(http, order_url("SO-1"), {"Package_Tracking_No": "9" * 34})
    assert too_long.status_code == 400 and error_of(too_long)[0] == "Application_StringExceededLength"
    sc.set_nav_platform(world, BC)
    assert world.nav.tracking_max_length == 50 and world.nav.max_page_size == 20_000
    assert _patch(http, order_url("SO-1"), {"Package_Tracking_No": "9" * 34}).status_code == 200


# --- orders deleted by posting ---------------------------------------------------------------


def test_ship_and_invoice_deletes_the_order_and_keeps_the_posted_shipment(
    http: httpx.Client, world: SandboxWorld
) -> None:
    new_order(
        world,
        "SO-7",
        external_document_no="113-1234567-1234567",
        lines=[("MUG-11OZ-BLK", 2), ("CAP-5P-OLV", 1)],
        shipping_agent_code="UPS",
        package_tracking_no="1ZFIRST",
    )
    first = sc.ship_and_invoice_nav_order(world, "SO-7", quantities={"MUG-11OZ-BLK": 2})
    assert "SO-7" in world.nav.sales_orders  # a line is still outstanding
    sc.update_nav_order(world, "SO-7", Package_Tracking_No="1ZSECOND")
    second = sc.ship_and_invoice_nav_order(world, "SO-7")
    assert "SO-7" not in world.nav.sales_orders and "SO-7" not in world.nav.sales_lines

    gone = http.get(order_url("SO-7"))
    assert gone.status_code == 404
    assert error_of(gone) == (
        "Internal_RecordNotFound",
        "The Sales Header does not exist. Identification fields and values: "
        "Document Type='Order',No.='SO-7'.",
    )
    lines = http.get(order_url("SO-7") + "/SalesOrderSalesLines")
    assert lines.status_code == 404
    by_ext = http.get(
        "PostedSalesShipment",
        params={"$filter": "External_Document_No eq '113-1234567-1234567'", "$orderby": "No"},
    ).json()["value"]
    assert [r["No"] for r in by_ext] == [first["No"], second["No"]]
    assert [r["Package_Tracking_No"] for r in by_ext] == ["1ZFIRST", "1ZSECOND"]  # TransferFields
    assert {r["Order_No"] for r in by_ext} == {"SO-7"} and {r["Shipping_Agent_Code"] for r in by_ext} == {
        "UPS"
    }
    assert nos(http, "PostedSalesShipment", "Order_No eq 'SO-7'") == [first["No"], second["No"]]


# --- Business Central JSON $batch ------------------------------------------------------------


def _batch(http: httpx.Client, requests: list[dict[str, Any]], **headers: str) -> httpx.Response:
    return http.post("$batch", json={"requests": requests}, headers=headers)


def _patch_op(ident: str, no: str, etag: str, tracking: str) -> dict[str, Any]:
    return {
        "id": ident,
        "method": "PATCH",
        "url": order_url(no),
        "headers": {"If-Match": etag, "Content-Type": "application/json"},
        "body": {"Package_Tracking_No": tracking},
    }


def test_batch_runs_each_operation_with_its_own_etag(
    sandbox: SandboxServers, http: httpx.Client, world: SandboxWorld
) -> None:
    sc.set_nav_platform(world, BC)
    for no in ("SO-1", "SO-2", "SO-3"):
        new_order(world, no)
    etags = {no: world.nav.etag(world.nav.sales_orders[no]) for no in ("SO-1", "SO-2", "SO-3")}
    sc.update_nav_order(world, "SO-2", Your_Reference="changed by a user")  # SO-2's ETag is stale now
    requests_before = len(world.nav.log.entries)
    absolute = sandbox.nav_odata_url + "/" + order_url("SO-3")
    ops = [
        _patch_op("1", "SO-1", etags["SO-1"], "1ZAAA"),
        _patch_op("2", "SO-2", etags["SO-2"], "1ZBBB"),
        {**_patch_op("3", "SO-3", etags["SO-3"], "1ZCCC"), "url": absolute},
        {"id": "4", "method": "GET", "url": "SalesOrder?$filter=No eq 'SO-1'&$select=No,Package_Tracking_No"},
    ]
    response = _batch(http, ops)
    assert response.status_code == 200
    responses = {r["id"]: r for r in response.json()["responses"]}
    assert [r["id"] for r in response.json()["responses"]] == ["1", "2", "3", "4"]
    assert responses["1"]["status"] == 200 and responses["3"]["status"] == 200
    body = responses["1"]["body"]
    assert body["Package_Tracking_No"] == "1ZAAA" and body["@odata.etag"] != etags["SO-1"]
    assert body["@odata.etag"] == world.nav.etag(world.nav.sales_orders["SO-1"])
    assert responses["1"]["headers"]["content-type"].startswith("application/json")
    assert responses["2"]["status"] == 409
    assert responses["2"]["body"]["error"]["code"] == "Request_EntityChanged"
    assert CORRELATION.search(responses["2"]["body"]["error"]["message"])
    assert responses["4"]["body"]["value"] == [
        {"@odata.etag": body["@odata.etag"], "No": "SO-1", "Package_Tracking_No": "1ZAAA"}
    ]
    orders = world.nav.sales_orders
    assert [orders[n]["Package_Tracking_No"] for n in ("SO-1", "SO-2", "SO-3")] == ["1ZAAA", "", "1ZCCC"]
    # One HTTP request (rate limit, stats); the operations are in the batch log.
    assert len(world.nav.log.entries) - requests_before == 1
    assert world.nav.batch_log.count("PATCH") == 3 and world.nav.batch_log.count("GET") == 1
    assert [s for m, _p, _q, s in world.nav.batch_log.entries if m == "PATCH"] == [200, 409, 200]
    stats = httpx.get(f"{sandbox.nav_base_url}/_sandbox/stats").json()
    assert stats["batch_operations"] == 4 and stats["batch_operations_by_method"]["PATCH"] == 3


def test_batch_errors_inside_operations(http: httpx.Client, world: SandboxWorld) -> None:
    sc.set_nav_platform(world, BC)
    new_order(world, "SO-1")
    ops = [
        {"id": "a", "method": "PATCH", "url": order_url("SO-1"), "body": {"Package_Tracking_No": "1Z"}},
        {"id": "b", "method": "GET", "url": order_url("NOPE")},
        {"id": "c", "method": "GET", "url": "SalesOrder?$filter=No eq '" + "X" * 21 + "'"},
    ]
    statuses = {
        r["id"]: (r["status"], r["body"]["error"]["code"]) for r in _batch(http, ops).json()["responses"]
    }
    assert statuses == {
        "a": (400, "BadRequest_InvalidToken"),
        "b": (404, "Internal_RecordNotFound"),
        "c": (400, "Application_FilterErrorException"),
    }


def test_snapshot_isolation_rolls_back_the_whole_batch(http: httpx.Client, world: SandboxWorld) -> None:
    sc.set_nav_platform(world, BC)
    new_order(world, "SO-1", shipping_agent_code="UPS")
    new_order(world, "SO-2")
    line = world.nav.sales_lines["SO-1"][0]
    before = ({**world.nav.sales_orders["SO-1"]}, {**line})
    ops = [
        {
            "id": "1",
            "method": "PATCH",
            "url": order_url("SO-1"),
            "headers": {"If-Match": "*"},
            "body": {"Package_Tracking_No": "1ZAAA", "Shipping_Agent_Code": "FEDEX"},
        },
        {"id": "2", "method": "PATCH", "url": order_url("SO-2"), "headers": {"If-Match": 'W/"stale"'},
         "body": {"Package_Tracking_No": "1ZBBB"}},
    ]  # fmt: skip
    responses = _batch(http, ops, Isolation="snapshot").json()["responses"]
    # The operation that ran still reports 200 (as in Microsoft's example), but nothing stays.
    assert [r["status"] for r in responses] == [200, 409]
    assert world.nav.sales_orders["SO-1"] == before[0] and line == before[1]
    # Without a failure the snapshot batch commits.
    ok = _batch(http, ops[:1], Isolation="snapshot").json()["responses"]
    assert ok[0]["status"] == 200 and world.nav.sales_orders["SO-1"]["Package_Tracking_No"] == "1ZAAA"
    assert line["Shipping_Agent_Code"] == "FEDEX"  # the header pushed the agent to its line


def test_batch_limit_is_100_operations(http: httpx.Client, world: SandboxWorld) -> None:
    sc.set_nav_platform(world, BC)
    new_order(world, "SO-1")
    op = {"method": "GET", "url": order_url("SO-1")}
    assert _batch(http, [op] * 100).status_code == 200
    response = _batch(http, [op] * 101)
    assert response.status_code == 400
    assert error_of(response) == (
        "Unknown",
        "The current batch message contains too many parts. A maximum number of '100' query operations "
        "and change sets are allowed in a batch message.",
    )
    assert world.nav.batch_log.count() == 100


def test_batch_needs_the_json_format(http: httpx.Client, world: SandboxWorld) -> None:
    sc.set_nav_platform(world, BC)
    assert (
        http.post("$batch", content=b"--boundary", headers={"Content-Type": "multipart/mixed"}).status_code
        == 400
    )
    assert http.post("$batch", json={"nope": []}).status_code == 400
    assert http.get("$batch").status_code == 405


def test_nav_2018_has_no_batch(http: httpx.Client, world: SandboxWorld) -> None:
    new_order(world, "SO-1")
    response = _batch(http, [{"method": "GET", "url": order_url("SO-1")}])
    assert response.status_code == 404
    assert error_of(response) == (
        "BadRequest_ResourceNotFound",
        "Resource not found for the segment '$batch'.",
    )
    assert world.nav.batch_log.count() == 0


def test_servers_start_in_either_platform() -> None:
    from shipnav_dagster.sandbox.server import running_sandbox

    world = SandboxWorld()
    with running_sandbox(world, platform=BC) as servers:
        assert world.nav.platform == BC and world.nav.tracking_max_length == 50
        assert servers.env()["NAV_TRACKING_MAX_LENGTH"] == "50"
        with pytest.raises(ValueError, match="NAV_AUTH"):
            servers.env(nav_auth="kerberos")
    assert SandboxWorld.for_platform(NAV2018).nav.tracking_max_length == 30
    with pytest.raises(ValueError, match="unknown NAV platform"):
        SandboxServers(SandboxWorld(), platform="bc27")


def test_batch_at_the_instance_root_takes_the_company_per_operation(
    sandbox: SandboxServers, world: SandboxWorld
) -> None:
    sc.set_nav_platform(world, BC)
    new_order(world, "SO-1")
    root = sandbox.nav_odata_url.split("/Company(")[0]  # .../ODataV4
    ops = [
        {"id": "1", "method": "GET", "url": order_url("SO-1"), "headers": {"Company": "CRONUS USA, Inc."}},
        {"id": "2", "method": "GET", "url": order_url("SO-1")},
    ]
    auth = (world.nav.username, world.nav.password)
    response = httpx.post(f"{root}/$batch", json={"requests": ops}, auth=auth)
    first, second = response.json()["responses"]
    assert first["status"] == 200 and first["body"]["No"] == "SO-1"
    assert second["status"] == 400 and second["body"]["error"]["code"] == "Internal_CompanyNotFound"
