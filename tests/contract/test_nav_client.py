"""shipnav's NAV OData client: filter building and error parsing, then the client over real HTTP
against the NAV sandbox (auth, paging, ETags, NAV's validation rules, retries, concurrency)."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shipnav_dagster.nav.auth import BasicAuth, OAuth2ClientCredentials
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.errors import (
    NavAuthError,
    NavConflictError,
    NavError,
    NavNotFoundError,
    NavThrottledError,
    NavUnavailableError,
    NavValidationError,
    error_from_response,
)
from shipnav_dagster.nav.filters import and_, any_of, eq, key_predicate, literal, startswith
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.settings import load_settings

SCOPE = "https://api.businesscentral.dynamics.com/.default"
SPECIAL_NAMES = ["O'Brien & Sons", "Müller-Lüdenscheid GmbH", "100% #1 + Co?", "Renée O'Connor-Smith"]

# --- filters (pure) --------------------------------------------------------------------------


def test_literals_are_quoted_by_type() -> None:
    assert literal("O'Brien & Sons") == "'O''Brien & Sons'"
    assert literal("") == "''"
    assert literal(10000) == "10000"
    assert literal(Decimal("2.50")) == "2.50"
    assert literal(1.5) == "1.5"
    assert literal(date(2024, 5, 1)) == "2024-05-01"
    assert literal(datetime(2024, 5, 1, 12, 0, tzinfo=UTC)) == "2024-05-01T12:00:00Z"
    assert literal(True) == "true" and literal(False) == "false"
    assert literal(None) == "null"
    with pytest.raises(ValueError):
        literal(datetime(2024, 5, 1))  # naive: ambiguous
    with pytest.raises(ValueError):
        literal(Decimal("NaN"))
    with pytest.raises(TypeError):
        literal(object())  # type: ignore[arg-type]


def test_filter_builders() -> None:
    assert eq("No", "A'1") == "No eq 'A''1'"
    assert any_of("No", ["A", "B", "A"]) == "(No eq 'A' or No eq 'B')"
    assert any_of("No", ["A"]) == "No eq 'A'"
    assert (
        and_(any_of("No", ["A", "B"]), eq("Status", "Open"))
        == "((No eq 'A' or No eq 'B')) and (Status eq 'Open')"
    )
    assert startswith("External_Document_No", "O'") == "startswith(External_Document_No,'O''')"
    for bad in ("No eq 'x' or Status", "Sell to", "1No", ""):
        with pytest.raises(ValueError):
            eq(bad, "x")
    with pytest.raises(ValueError):
        any_of("No", [])


def test_key_predicates_quote_and_percent_encode() -> None:
    assert key_predicate(Document_Type="Order", No="101005") == "(Document_Type='Order',No='101005')"
    assert key_predicate(No="O'B/1#2 %") == "(No='O''B%2F1%232%20%25')"
    assert key_predicate(Document_No="A", Line_No=10000) == "(Document_No='A',Line_No=10000)"


# --- errors (pure) ---------------------------------------------------------------------------


def _response(status: int, body: str, **headers: str) -> httpx.Response:
    request = httpx.Request("PATCH", "https://nav.example.com/ODataV4/SalesOrder")
    return httpx.Response(status, content=body.encode(), headers=headers, request=request)


def test_error_bodies_are_parsed_and_classified() -> None:
    body = (
        '{"error":{"code":"Request_EntityChanged","message":"Another user has already changed the record.  '
        'CorrelationId:  1b3e2a1c-5d6e-4f70-8a9b-0c1d2e3f4a5b."}}'
    )
    error = error_from_response(_response(409, body))
    assert isinstance(error, NavConflictError)
    assert error.code == "Request_EntityChanged"
    assert error.message == "Another user has already changed the record."
    assert error.correlation_id == "1b3e2a1c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
    assert "PATCH https://nav.example.com" in str(error)
    assert isinstance(error_from_response(_response(412, "")), NavConflictError)
    generic_409 = error_from_response(_response(409, '{"error":{"code":"Internal_EntityWithSameKeyExists"}}'))
    assert type(generic_409) is NavError
    html = error_from_response(
        _response(503, "<html><body>Service\n Unavailable</body></html>", **{"Retry-After": "7"})
    )
    assert isinstance(html, NavUnavailableError)
    assert html.code == "HTTP503" and "Service Unavailable" in html.message and html.retry_after == 7.0
    throttled = error_from_response(_response(429, ""))
    assert isinstance(throttled, NavThrottledError) and throttled.retry_after is None
    app = '{"error":{"code":"Application_StringExceededLength","message":"too long"}}'
    assert isinstance(error_from_response(_response(400, app)), NavValidationError)
    relation = '{"error":{"code":"Internal_InvalidTableRelation","message":"x"}}'
    assert isinstance(error_from_response(_response(400, relation)), NavValidationError)
    assert type(error_from_response(_response(400, '{"error":{"code":"BadRequest_NotFound"}}'))) is NavError
    assert isinstance(error_from_response(_response(404, "")), NavNotFoundError)
    assert isinstance(error_from_response(_response(401, "")), NavAuthError)


# --- the client against the sandbox ----------------------------------------------------------


def add_order(world: SandboxWorld, no: str, **fields: Any) -> dict[str, Any]:
    record = {"Document_Type": "Order", "No": no, "Status": "Open", "Sell_to_Customer_Name": f"Customer {no}"}
    record.update(fields)
    world.nav.stamp(record)
    world.nav.sales_orders[no] = record
    return record


@pytest.fixture
def world(empty_world: SandboxWorld) -> SandboxWorld:
    empty_world.nav.shipping_agents = {"UPS": {"GROUND", "NEXTDAY"}, "FEDEX": {"EXPRESS"}}
    return empty_world


class Sleeps(list[float]):
    """Records backoff sleeps instead of sleeping, so tests are fast and can check Retry-After."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def oauth(sandbox: SandboxServers, world: SandboxWorld, secret: str | None = None) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        sandbox.nav_token_url, world.nav.client_id, secret or world.nav.client_secret, SCOPE
    )


@pytest.fixture
def client(sandbox: SandboxServers, world: SandboxWorld, sleeps: Sleeps) -> Iterator[NavClient]:
    with NavClient(sandbox.nav_odata_url, oauth(sandbox, world), sleep=sleeps, max_attempts=4) as nav:
        yield nav


def token_requests(world: SandboxWorld) -> int:
    return world.nav.log.count("POST", "/oauth2/v2.0/token")


def test_token_is_cached_across_calls_and_threads(client: NavClient, world: SandboxWorld) -> None:
    add_order(world, "A")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: client.get_sales_order("A"), range(12)))
    assert all(r is not None and r["No"] == "A" for r in results)
    assert token_requests(world) == 1
    assert client.stats.get == 12


def test_expired_token_is_refreshed_once_and_the_call_succeeds(
    client: NavClient, world: SandboxWorld
) -> None:
    add_order(world, "A")
    assert client.get_sales_order("A") is not None
    world.nav.expire_tokens()  # NAV starts rejecting the cached token mid-run
    assert client.get_sales_order("A") is not None
    assert token_requests(world) == 2
    assert [s for _m, _p, _q, s in world.nav.log.entries if s == 401] == [401]


def test_credentials_rejected_twice_is_a_clear_auth_error(client: NavClient, world: SandboxWorld) -> None:
    world.nav.app_registered = False  # tokens are issued, NAV refuses every one of them
    with pytest.raises(NavAuthError) as caught:
        client.get_sales_order("A")
    message = str(caught.value)
    assert "rejected the credentials twice" in message
    assert "NAV_CLIENT_ID" in message and "NAV_CLIENT_SECRET" in message and "NAV_SCOPE" in message
    assert token_requests(world) == 2  # one refresh, then give up; never retried further
    assert world.nav.log.count("GET") == 2


def test_token_endpoint_failure_names_the_settings_not_the_secret(
    sandbox: SandboxServers, world: SandboxWorld
) -> None:
    secret = "wrong-secret-value-123"
    with (
        NavClient(sandbox.nav_odata_url, oauth(sandbox, world, secret)) as nav,
        pytest.raises(NavAuthError) as caught,
    ):
        nav.get_sales_order("A")
    message = str(caught.value)
    assert "NAV_TOKEN_URL" in message and "NAV_CLIENT_SECRET" in message and "invalid" in message.lower()
    assert secret not in message and secret not in repr(caught.value.args)
    assert world.nav.log.count("GET") == 0


def test_basic_auth(sandbox: SandboxServers, world: SandboxWorld) -> None:
    add_order(world, "A")
    with NavClient(sandbox.nav_odata_url, BasicAuth(world.nav.username, world.nav.password)) as nav:
        assert nav.get_sales_order("A") is not None
    with NavClient(sandbox.nav_odata_url, BasicAuth(world.nav.username, "not-it")) as nav:
        with pytest.raises(NavAuthError) as caught:
            nav.get_sales_order("A")
        assert "NAV_USERNAME/NAV_PASSWORD" in str(caught.value) and "not-it" not in str(caught.value)
    assert token_requests(world) == 0


def test_from_settings_uses_the_sandbox_environment(sandbox: SandboxServers, world: SandboxWorld) -> None:
    add_order(world, "A")
    for mode in ("oauth2", "basic"):
        env = {k.lower(): v for k, v in sandbox.env(nav_auth=mode).items()}
        with NavClient.from_settings(load_settings(**env)) as nav:
            assert nav.get_sales_order("A") is not None
            assert "MaxLength" in nav.metadata()


def test_special_characters_round_trip_in_filters_and_keys(client: NavClient, world: SandboxWorld) -> None:
    for n, name in enumerate(SPECIAL_NAMES):
        add_order(world, f"SO-{n}", Sell_to_Customer_Name=name, External_Document_No=f"#{n}/O'K %")
    add_order(world, "O'NEIL/7#", Sell_to_Customer_Name="Other")
    found = client.find_sales_orders("Sell_to_Customer_Name", SPECIAL_NAMES, select=["Sell_to_Customer_Name"])
    assert sorted(r["Sell_to_Customer_Name"] for r in found) == sorted(SPECIAL_NAMES)
    assert all(set(r) == {"@odata.etag", "No", "Sell_to_Customer_Name"} for r in found)
    by_ext = client.find_sales_orders("External_Document_No", ["#2/O'K %"], select=["No"])
    assert [r["No"] for r in by_ext] == ["SO-2"]
    odd = client.get_sales_order("O'NEIL/7#", select=["No", "Status"])
    assert odd is not None and odd["No"] == "O'NEIL/7#"
    updated = client.patch_sales_order("O'NEIL/7#", odd["@odata.etag"], {"Package_Tracking_No": "1Z'&#"})
    assert updated["Package_Tracking_No"] == "1Z'&#"
    assert client.get_sales_order("NOT-THERE") is None


def test_find_chunks_one_field_or_chains(client: NavClient, world: SandboxWorld) -> None:
    for n in range(5):
        add_order(world, f"C{n}")
    found = client.find_sales_orders(
        "No", [f"C{n}" for n in range(5)] + ["C0", "", "MISSING"], select=["No"], chunk=2
    )
    assert sorted(r["No"] for r in found) == [f"C{n}" for n in range(5)]
    queries = [q for m, p, q, _s in world.nav.log.entries if m == "GET" and p.endswith("/SalesOrder")]
    assert len(queries) == 3  # 6 distinct values, 2 per request
    assert all(" or " not in q or q.count("No eq") >= 2 for q in queries)
    assert client.find_sales_orders("No", [], select=["No"]) == []


def test_next_link_paging_with_prefer_header(sandbox: SandboxServers, world: SandboxWorld) -> None:
    for n in range(10):
        add_order(world, f"P{n:02d}")
    with NavClient(sandbox.nav_odata_url, oauth(sandbox, world), page_size=3) as nav:
        rows = list(nav.query("SalesOrder", select=["No"]))
    assert [r["No"] for r in rows] == [f"P{n:02d}" for n in range(10)]
    assert world.nav.log.count("GET", "/SalesOrder") == 4


def test_next_link_paging_with_the_server_maximum(client: NavClient, world: SandboxWorld) -> None:
    world.nav.max_page_size = 4
    for n in range(10):
        add_order(world, f"P{n:02d}", Sell_to_Customer_Name="Same Name")
    rows = client.find_sales_orders("Sell_to_Customer_Name", ["Same Name"], select=["No"])
    assert len(rows) == 10
    assert world.nav.log.count("GET", "/SalesOrder") == 3


def test_or_across_distinct_fields_is_refused_by_nav(client: NavClient, world: SandboxWorld) -> None:
    add_order(world, "A")
    with pytest.raises(NavError) as caught:
        list(client.query("SalesOrder", filter="No eq 'A' or External_Document_No eq 'A'"))
    assert caught.value.status == 400 and not isinstance(caught.value, NavValidationError)
    assert "not supported on distinct fields" in caught.value.message
    assert world.nav.log.count("GET") == 1  # a 400 is never retried


def test_stale_etag_is_a_conflict(client: NavClient, world: SandboxWorld) -> None:
    add_order(world, "A")
    order = client.get_sales_order("A")
    assert order is not None
    first = client.patch_sales_order("A", order["@odata.etag"], {"Package_Tracking_No": "1Z1"})
    assert first["@odata.etag"] != order["@odata.etag"]
    with pytest.raises(NavConflictError) as caught:
        client.patch_sales_order("A", order["@odata.etag"], {"Package_Tracking_No": "1Z2"})
    assert caught.value.code == "Request_EntityChanged" and caught.value.correlation_id
    world.nav.faults.concurrent_edit_next = 1
    with pytest.raises(NavConflictError):
        client.patch_sales_order("A", first["@odata.etag"], {"Package_Tracking_No": "1Z3"})
    assert world.nav.sales_orders["A"]["Package_Tracking_No"] == "1Z1"


def test_patch_refuses_missing_or_wildcard_etags(client: NavClient, world: SandboxWorld) -> None:
    for etag in ("", "  ", "*"):
        with pytest.raises(ValueError):
            client.patch_sales_order("A", etag, {"Package_Tracking_No": "1Z"})
    with pytest.raises(ValueError):
        client.patch_sales_order("A", 'W/"x"', {})
    assert world.nav.log.count() == 0


def test_patch_without_if_match_is_refused_by_nav(sandbox: SandboxServers, world: SandboxWorld) -> None:
    add_order(world, "A")
    response = httpx.patch(
        sandbox.nav_odata_url + "/SalesOrder(Document_Type='Order',No='A')",
        json={"Package_Tracking_No": "1Z"},
        auth=(world.nav.username, world.nav.password),
    )
    assert response.status_code == 400
    error = error_from_response(response)
    assert error.code == "BadRequest_InvalidToken" and error.correlation_id
    assert error.message.startswith("Could not validate the client concurrency token")


def test_nav_validation_rules_surface_as_validation_errors(client: NavClient, world: SandboxWorld) -> None:
    add_order(world, "R", Status="Released")
    order = client.get_sales_order("R")
    assert order is not None
    with pytest.raises(NavValidationError) as released:
        client.patch_sales_order("R", order["@odata.etag"], {"Shipping_Agent_Code": "UPS"})
    assert released.value.code == "Application_FieldValidationException"
    assert "Status must be equal to 'Open'" in released.value.message
    with pytest.raises(NavValidationError) as too_long:
        client.patch_sales_order("R", order["@odata.etag"], {"Package_Tracking_No": "1Z" * 16})
    assert too_long.value.code == "Application_StringExceededLength"
    written = client.patch_sales_order(
        "R", order["@odata.etag"], {"Package_Tracking_No": "1Z999AA10123456784"}
    )
    assert written["Package_Tracking_No"] == "1Z999AA10123456784"
    add_order(world, "O")
    open_order = client.get_sales_order("O")
    assert open_order is not None
    with pytest.raises(NavValidationError) as agent:
        client.patch_sales_order("O", open_order["@odata.etag"], {"Shipping_Agent_Code": "ACME"})
    assert agent.value.code == "Internal_InvalidTableRelation"
    assert world.nav.log.count("PATCH") == 4  # validation errors are never retried


def test_lines_and_posted_shipments(client: NavClient, world: SandboxWorld) -> None:
    add_order(world, "A")
    line = {"Document_Type": "Order", "Document_No": "A", "Line_No": 10000, "Type": "Item", "Quantity": 4}
    world.nav.stamp(line)
    world.nav.sales_lines["A"] = [line]
    for no in ("102001", "102002"):
        shipment = {"No": no, "Order_No": "A", "Package_Tracking_No": ""}
        world.nav.stamp(shipment)
        world.nav.posted_shipments[no] = shipment
    lines = client.sales_lines("A", select=["Quantity", "Qty_to_Ship"])
    assert [(x["Line_No"], x["Quantity"]) for x in lines] == [(10000, 4)]
    updated = client.patch_sales_line("A", 10000, lines[0]["@odata.etag"], {"Qty_to_Ship": Decimal("2.5")})
    assert updated["Qty_to_Ship"] == 2.5
    with pytest.raises(NavValidationError):
        client.patch_sales_line("A", 10000, updated["@odata.etag"], {"Qty_to_Ship": 5})
    posted = client.posted_shipments_for_orders(["A", "B"], select=["Package_Tracking_No"])
    assert sorted(p["No"] for p in posted) == ["102001", "102002"]
    result = client.patch_posted_shipment("102002", posted[1]["@odata.etag"], {"Package_Tracking_No": "1ZP"})
    assert result["Package_Tracking_No"] == "1ZP"


def test_503_with_retry_after_then_success(client: NavClient, world: SandboxWorld, sleeps: Sleeps) -> None:
    add_order(world, "A")
    world.nav.faults.fail_next, world.nav.faults.fail_status, world.nav.faults.retry_after_seconds = 1, 503, 1
    assert client.get_sales_order("A") is not None
    assert sleeps == [1.0]  # the server's Retry-After, not a guess
    assert client.stats.retries == 1


def test_429_is_retried_honouring_retry_after(client: NavClient, world: SandboxWorld, sleeps: Sleeps) -> None:
    add_order(world, "A")
    world.nav.faults.throttle_next, world.nav.faults.retry_after_seconds = 2, 1
    assert client.get_sales_order("A") is not None
    assert sleeps == [1.0, 1.0]


def test_persistent_500_fails_after_bounded_attempts(
    client: NavClient, world: SandboxWorld, sleeps: Sleeps
) -> None:
    add_order(world, "A")
    world.nav.faults.fail_next, world.nav.faults.fail_status = 100, 500
    with pytest.raises(NavUnavailableError) as caught:
        client.get_sales_order("A")
    assert caught.value.status == 500
    assert world.nav.log.count("GET") == 4  # max_attempts
    assert len(sleeps) == 3 and all(0 < s <= 11 for s in sleeps)


def test_dropped_connection_then_success(client: NavClient, world: SandboxWorld) -> None:
    add_order(world, "A")
    world.nav.faults.drop_next = 1
    assert client.get_sales_order("A") is not None
    assert client.stats.retries == 1


def test_dropped_patch_response_is_retried_and_cannot_write_twice(
    client: NavClient, world: SandboxWorld
) -> None:
    add_order(world, "A")
    order = client.get_sales_order("A")
    assert order is not None
    world.nav.faults.drop_next = 1
    # The first PATCH lands but its answer is lost; the retry carries the old ETag and gets 409.
    with pytest.raises(NavConflictError):
        client.patch_sales_order("A", order["@odata.etag"], {"Package_Tracking_No": "1ZONCE"})
    assert world.nav.sales_orders["A"]["Package_Tracking_No"] == "1ZONCE"
    assert world.nav.log.count("PATCH") == 2


def test_transport_failures_exhaust_into_unavailable(sandbox: SandboxServers, world: SandboxWorld) -> None:
    sleeps = Sleeps()
    world.nav.faults.drop_next = 10
    nav = NavClient(sandbox.nav_odata_url, oauth(sandbox, world), sleep=sleeps, max_attempts=3)
    with nav, pytest.raises(NavUnavailableError) as caught:
        nav.get_sales_order("A")
    assert caught.value.status == 0 and "3 attempt" in str(caught.value)
    assert len(sleeps) == 2


def test_concurrency_cap_holds_under_a_thread_pool(sandbox: SandboxServers, world: SandboxWorld) -> None:
    for n in range(24):
        add_order(world, f"T{n:02d}")
    world.nav.faults.latency_ms = 40
    with NavClient(sandbox.nav_odata_url, oauth(sandbox, world), max_concurrency=3) as nav:
        orders = nav.find_sales_orders("No", [f"T{n:02d}" for n in range(24)], select=["No"])
        world.nav.max_in_flight = 0

        def write(order: dict[str, Any]) -> str:
            changes = {"Package_Tracking_No": "1Z" + order["No"]}
            return nav.patch_sales_order(order["No"], order["@odata.etag"], changes)["Package_Tracking_No"]

        with ThreadPoolExecutor(12) as pool:
            written = list(pool.map(write, orders))
    assert sorted(written) == sorted("1Z" + o["No"] for o in orders)
    assert 2 <= world.nav.max_in_flight <= 3
    assert nav.stats.patch == 24


def test_unreachable_token_endpoint_is_retried_then_unavailable(
    sandbox: SandboxServers, world: SandboxWorld
) -> None:
    sleeps = Sleeps()
    auth = OAuth2ClientCredentials(
        "http://127.0.0.1:9/token", world.nav.client_id, world.nav.client_secret, SCOPE
    )
    nav = NavClient(sandbox.nav_odata_url, auth, sleep=sleeps, max_attempts=2)
    with nav, pytest.raises(NavUnavailableError) as caught:
        nav.get_sales_order("A")
    assert "NAV_TOKEN_URL" in str(caught.value) and len(sleeps) == 1
    assert world.nav.log.count() == 0
