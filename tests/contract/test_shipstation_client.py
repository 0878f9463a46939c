"""ShipStationClient against the sandbox over real HTTP (and a MockTransport where the sandbox
cannot produce the case, e.g. ``null`` list items or a server that ignores paging)."""

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from shipnav_dagster.core.model import ShipRecord
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.shipstation.errors import (
    ShipStationAuthError,
    ShipStationError,
    ShipStationRateLimited,
    ShipStationRequestError,
    ShipStationServerError,
    ShipStationTransportError,
)
from shipnav_dagster.shipstation.v1.client import ShipStationClient
from shipnav_dagster.shipstation.v1.parser import parse_fulfillment, parse_order, parse_shipment
from shipnav_dagster.shipstation.v1.timeutil import PACIFIC, NaiveDatetimeError
from tests.contract.test_shipstation_sandbox import (
    add_shipments,
    fulfillment_record,
    order_record,
    shipment_record,
)

WIDE_START = datetime(2020, 1, 1, tzinfo=UTC)
WIDE_END = datetime(2030, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class RecordingSleep:
    """Real sleeping (the sandbox's rate window is real time) that remembers each wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def sleeper() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def make_client(
    sandbox: SandboxServers, empty_world: SandboxWorld, sleeper: RecordingSleep
) -> Iterator[Callable[..., ShipStationClient]]:
    made: list[ShipStationClient] = []

    def make(**overrides: Any) -> ShipStationClient:
        options: dict[str, Any] = {
            "sleep": sleeper,
            "backoff_initial": 0.01,
            "backoff_max": 0.05,
            "reset_margin": 0.1,
            "timeout": 10.0,
        }
        options.update(overrides)
        key = options.pop("api_key", empty_world.shipstation.api_key)
        secret = options.pop("api_secret", empty_world.shipstation.api_secret)
        client = ShipStationClient(sandbox.shipstation_url, key, secret, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def shipments_logged(world: SandboxWorld) -> list[tuple[str, str, str, int]]:
    return [e for e in world.shipstation.log.entries if e[1] == "/shipments"]


# -- Pacific windows ---------------------------------------------------------------------------


def test_created_window_is_sent_as_pacific_wall_clock(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    add_shipments(
        empty_world,
        # Summer (PDT): 10:51:14.503 Pacific is 17:51:14.503 UTC.
        shipment_record(1, "2024-09-17T10:51:14.5030000"),
        # Just after midnight UTC on July 1st is still June 30th evening in Pacific time.
        shipment_record(2, "2024-06-30T20:00:00.0000000"),
        shipment_record(3, "2024-06-30T19:59:59.0000000"),
    )
    client = make_client()
    found = list(client.iter_shipments_created(utc(2024, 9, 17, 17, 51, 14), utc(2024, 9, 17, 17, 51, 15)))
    assert [s["shipmentId"] for s in found] == [1]
    assert rec(found[0]).created_at == utc(2024, 9, 17, 17, 51, 14, 503000)
    assert rec(found[0]).ship_date == date(2024, 9, 17)
    query = shipments_logged(empty_world)[-1][2]
    assert "createDateStart=2024-09-17+10%3A51%3A14" in query
    assert "sortBy=CreateDate" in query and "sortDir=ASC" in query and "includeShipmentItems=true" in query

    midnight = list(client.iter_shipments_created(utc(2024, 7, 1, 3, 0), utc(2024, 7, 1, 3, 30)))
    assert [s["shipmentId"] for s in midnight] == [2]
    assert rec(midnight[0]).created_at == utc(2024, 7, 1, 3, 0)


def test_spring_forward_window(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    add_shipments(
        empty_world,
        shipment_record(1, "2024-03-10T01:45:00.0000000"),  # PST: 09:45 UTC
        shipment_record(2, "2024-03-10T03:15:00.0000000"),  # PDT: 10:15 UTC
        shipment_record(3, "2024-03-10T03:45:00.0000000"),  # PDT: 10:45 UTC
    )
    client = make_client()
    found = list(client.iter_shipments_created(utc(2024, 3, 10, 9, 40), utc(2024, 3, 10, 10, 20)))
    assert [s["shipmentId"] for s in found] == [1, 2]
    assert [rec(s).created_at for s in found] == [utc(2024, 3, 10, 9, 45), utc(2024, 3, 10, 10, 15)]


def test_fall_back_window_does_not_lose_records(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    # 08:50-09:10 UTC spans the repeated 01:00-02:00 hour: 01:50 PDT .. 01:10 PST. A naive
    # conversion sends a reversed window and finds nothing.
    add_shipments(
        empty_world,
        shipment_record(1, "2024-11-03T01:55:00.0000000"),  # 08:55 UTC (PDT)
        shipment_record(2, "2024-11-03T03:00:00.0000000"),  # 11:00 UTC, outside
    )
    client = make_client()
    found = list(client.iter_shipments_created(utc(2024, 11, 3, 8, 50), utc(2024, 11, 3, 9, 10)))
    assert [s["shipmentId"] for s in found] == [1]
    assert rec(found[0]).created_at == utc(2024, 11, 3, 8, 55)


def test_window_bounds_are_inclusive(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    add_shipments(
        empty_world,
        shipment_record(1, "2024-01-15T08:00:00.0000000"),  # 16:00 UTC, exactly the start
        shipment_record(2, "2024-01-15T09:00:00.0000000"),  # 17:00 UTC, exactly the end
        shipment_record(3, "2024-01-15T09:00:01.0000000"),
    )
    client = make_client()
    found = list(client.iter_shipments_created(utc(2024, 1, 15, 16, 0), utc(2024, 1, 15, 17, 0)))
    assert [s["shipmentId"] for s in found] == [1, 2]


def test_void_window_finds_old_labels_voided_recently(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    add_shipments(
        empty_world,
        shipment_record(1, "2024-08-01T10:00:00.0000000", void_date="2024-09-17T12:00:00.1234567"),
        shipment_record(2, "2024-09-17T12:00:00.0000000"),
    )
    client = make_client()
    window = (utc(2024, 9, 17, 18, 0), utc(2024, 9, 17, 20, 0))
    voided = list(client.iter_shipments_voided(*window))
    assert [s["shipmentId"] for s in voided] == [1]
    assert rec(voided[0]).voided is True
    assert rec(voided[0]).void_date == utc(2024, 9, 17, 19, 0, 0, 123456)
    assert [s["shipmentId"] for s in client.iter_shipments_created(*window)] == [2]


def test_orders_and_fulfillments_windows(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    empty_world.shipstation.orders[5] = order_record(5, modify_date="2024-09-17T10:00:00.0000000")
    empty_world.shipstation.orders[6] = order_record(6, modify_date="2024-09-10T10:00:00.0000000")
    empty_world.shipstation.fulfillments[8] = fulfillment_record(8, "2024-09-17T10:30:00.0000000")
    client = make_client()
    window = (utc(2024, 9, 17, 16, 0), utc(2024, 9, 17, 18, 0))
    assert [o["orderId"] for o in client.iter_orders_modified(*window)] == [5]
    fulfillments = list(client.iter_fulfillments_created(*window))
    assert [f["fulfillmentId"] for f in fulfillments] == [8]
    assert frec(fulfillments[0]).ship_date == date(2024, 9, 17)
    assert frec(fulfillments[0]).carrier_code == "USPS"
    order_query = [e[2] for e in empty_world.shipstation.log.entries if e[1] == "/orders"][-1]
    assert "sortBy=ModifyDate" in order_query


def test_naive_window_is_rejected_at_the_call(make_client: Callable[..., ShipStationClient]) -> None:
    client = make_client()
    with pytest.raises(NaiveDatetimeError):
        client.iter_shipments_created(datetime(2024, 1, 1), datetime(2024, 1, 2))
    assert client.stats.total_requests == 0


# -- pagination -------------------------------------------------------------------------------


def _many_shipments(world: SandboxWorld, count: int) -> None:
    for i in range(1, count + 1):
        stamp = f"2024-09-17T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.0000000"
        world.shipstation.shipments[i] = shipment_record(i, stamp)


def test_pagination_ignores_pages_zero(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    _many_shipments(empty_world, 7)
    empty_world.shipstation.report_zero_pages = True
    client = make_client(page_size=3)
    found = [s["shipmentId"] for s in client.iter_shipments_created(WIDE_START, WIDE_END)]
    assert found == [1, 2, 3, 4, 5, 6, 7]
    # Pages 1 and 2 are full; page 3 is short and so the last.
    assert len(shipments_logged(empty_world)) == 3


@pytest.mark.parametrize(("count", "requests"), [(500, 1), (1000, 2)])
def test_pagination_with_exactly_full_pages_stops_at_the_total(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld, count: int, requests: int
) -> None:
    _many_shipments(empty_world, count)
    empty_world.shipstation.report_zero_pages = True
    client = make_client(page_size=500)
    found = [s["shipmentId"] for s in client.iter_shipments_created(WIDE_START, WIDE_END)]
    assert found == list(range(1, count + 1))
    # The envelope's total (here beside the documented "pages": 0) says the full last page is the
    # last: no extra empty page is asked for.
    assert len(shipments_logged(empty_world)) == requests
    assert all("pageSize=500" in e[2] for e in shipments_logged(empty_world))


def _paged_by_hand(count: int, page_size: int, total: Callable[[int], int | None]) -> list[int]:
    """Serve ``count`` shipments in pages; ``total(count)`` is what the envelope claims (None: absent)."""
    asked: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        asked.append(page)
        ids = list(range(1, count + 1))[(page - 1) * page_size : page * page_size]
        body: dict[str, object] = {"shipments": [{"shipmentId": i} for i in ids], "page": page, "pages": 0}
        claimed = total(count)
        if claimed is not None:
            body["total"] = claimed
        return httpx.Response(200, json=body)

    with ShipStationClient(
        "https://ssapi.example", "k", "s", page_size=page_size, transport=httpx.MockTransport(handler)
    ) as client:
        url = f"https://ssapi.example/shipments?pageSize={page_size}"
        found = [r["shipmentId"] for r in client.fetch_resource_url(url)]
    assert found == list(range(1, count + 1))
    return asked


def test_pagination_without_a_total_confirms_a_full_last_page_with_an_empty_one() -> None:
    assert _paged_by_hand(4, 2, lambda n: None) == [1, 2, 3]


def test_pagination_ignores_a_total_the_records_contradict() -> None:
    # "total": 0 beside a full page of records cannot be right: full pages keep the scan going.
    assert _paged_by_hand(5, 2, lambda n: 0) == [1, 2, 3]


def test_pagination_trusts_pages_when_the_server_returns_short_pages(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    # We ask for 500 but the server (as for any clamp below our size) sends 100 per page.
    _many_shipments(empty_world, 250)
    client = make_client(page_size=500)
    with_url = client.fetch_resource_url(f"{client.base_url}/shipments?includeShipmentItems=False")
    assert [r["shipmentId"] for r in with_url] == list(range(1, 251))
    assert len(shipments_logged(empty_world)) == 3


def test_repeated_page_is_refused() -> None:
    page = {"shipments": [{"shipmentId": 1}, {"shipmentId": 2}], "total": 10, "page": 1, "pages": 5}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=page)  # ignores ?page=

    with (
        ShipStationClient(
            "https://ssapi.example", "k", "s", page_size=2, transport=httpx.MockTransport(handler)
        ) as client,
        pytest.raises(ShipStationError, match="repeated"),
    ):
        list(client.iter_shipments_created(WIDE_START, WIDE_END))


def test_null_items_are_skipped() -> None:
    pages = {
        1: {"shipments": [None, {"shipmentId": 1, "shipmentItems": [None, {"sku": "A"}]}, None], "total": 2},
        2: {"shipments": [{"shipmentId": 2}], "total": 2},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**pages[int(request.url.params["page"])], "pages": 0})

    with ShipStationClient(
        "https://ssapi.example", "k", "s", page_size=3, transport=httpx.MockTransport(handler)
    ) as c:
        found = list(c.iter_shipments_created(WIDE_START, WIDE_END))
        assert [s["shipmentId"] for s in found] == [1, 2]
        assert found[0]["shipmentItems"] == [None, {"sku": "A"}]  # as sent; the parser skips the null
        assert c.stats.null_items_skipped == 2


def rec(item: dict) -> ShipRecord:
    record = parse_shipment(item).record
    assert record is not None
    return record


def frec(item: dict) -> ShipRecord:
    record = parse_fulfillment(item).record
    assert record is not None
    return record


# -- payloads as sent ---------------------------------------------------------------------------------------


def test_unknown_fields_are_kept_and_items_included(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    add_shipments(
        empty_world,
        shipment_record(
            1, "2024-09-17T10:00:00.0000000", brandNewField={"nested": [1, None]}, labelMessages=None
        ),
    )
    (shipment,) = list(make_client().iter_shipments_created(WIDE_START, WIDE_END))
    # The client hands over the payload exactly as ShipStation sent it (the ledger keeps it).
    assert shipment == empty_world.shipstation.shipments[1]
    assert shipment["brandNewField"] == {"nested": [1, None]}
    record = rec(shipment)
    assert [i.sku for i in record.items] == ["SKU-1"]
    assert record.created_at == utc(2024, 9, 17, 17, 0)


def test_get_order_list_stores_and_webhooks(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    empty_world.shipstation.orders[41] = order_record(41, number="100041")
    empty_world.shipstation.stores[3] = {"storeId": 3, "storeName": "Web Shop", "active": True, "x": 1}
    client = make_client()
    order = client.get_order(41)
    assert order is not None and order["orderNumber"] == "100041" and order["orderKey"] == "key-41"
    assert parse_order(order).order_date == utc(2024, 9, 17, 1, 0).astimezone(PACIFIC).date()
    assert client.get_order(404040) is None
    assert [s.store_name for s in client.list_stores()] == ["Web Shop"]

    hook_id = client.subscribe_webhook(
        "https://shipnav.example/webhooks/shipstation/t", "SHIP_NOTIFY", store_id=3
    )
    assert isinstance(hook_id, int)
    assert [h["WebHookID"] for h in client.list_webhooks()] == [hook_id]
    assert client.unsubscribe_webhook(hook_id) is True
    assert client.unsubscribe_webhook(hook_id) is False
    with pytest.raises(ShipStationRequestError) as bad_event:
        client.subscribe_webhook("https://shipnav.example/x", "NOT_AN_EVENT")
    assert bad_event.value.status == 400


def test_fetch_resource_url_follows_pages(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    for i in range(1, 4):
        empty_world.shipstation.shipments[i] = shipment_record(
            i, f"2024-09-17T10:00:0{i}.0000000", store_id=9
        )
    empty_world.shipstation.shipments[4] = shipment_record(4, "2024-09-17T10:00:04.0000000", store_id=8)
    client = make_client()
    url = f"{client.base_url}/shipments?storeID=9&includeShipmentItems=True&pageSize=2"
    records = client.fetch_resource_url(url)
    assert [r["shipmentId"] for r in records] == [1, 2, 3]
    assert records[0]["shipmentItems"] is not None
    assert client.stats.requests["GET /shipments"] == 2


# -- errors, retries and rate limits --------------------------------------------------------------


def test_401_raises_auth_error_without_secrets(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    secret = "s3cr3t-that-must-not-leak"
    client = make_client(api_key="key-that-must-not-leak", api_secret=secret)
    with pytest.raises(ShipStationAuthError) as caught:
        list(client.iter_shipments_created(WIDE_START, WIDE_END))
    text = str(caught.value)
    assert "SHIPSTATION_API_KEY / SHIPSTATION_API_SECRET" in text
    assert secret not in text and "key-that-must-not-leak" not in text and "Basic" not in text
    assert caught.value.status == 401
    assert len(empty_world.shipstation.log.entries) == 1  # never retried


def test_429_then_success_waits_out_the_reset(
    sandbox: SandboxServers,
    make_client: Callable[..., ShipStationClient],
    empty_world: SandboxWorld,
    sleeper: RecordingSleep,
) -> None:
    state = empty_world.shipstation
    state.rate_limit_per_minute, state.rate_window_seconds = 2, 1.0
    add_shipments(empty_world, shipment_record(1, "2024-09-17T10:00:00.0000000"))
    # Another user of the same key spends the budget first.
    with httpx.Client(base_url=sandbox.shipstation_url, auth=(state.api_key, state.api_secret)) as other:
        assert [other.get("/stores").status_code for _ in range(2)] == [200, 200]
    client = make_client()
    found = list(client.iter_shipments_created(WIDE_START, WIDE_END))
    assert [s["shipmentId"] for s in found] == [1]
    assert [e[3] for e in shipments_logged(empty_world)] == [429, 200]
    assert client.stats.throttled == 1 and client.stats.retries == 1
    # It waited at least the reported reset (a whole second here), plus the margin.
    assert sleeper.waits and sleeper.waits[0] >= 1.0
    assert client.stats.limit == 2 and client.stats.remaining is not None


def test_throttle_fault_then_success(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld, sleeper: RecordingSleep
) -> None:
    empty_world.shipstation.faults.throttle_next = 1
    empty_world.shipstation.faults.retry_after_seconds = 1
    empty_world.shipstation.orders[1] = order_record(1)
    assert make_client().get_order(1) is not None
    assert sleeper.waits == [pytest.approx(1.1)]


def test_pacing_avoids_429_when_the_budget_runs_low(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld, sleeper: RecordingSleep
) -> None:
    state = empty_world.shipstation
    state.rate_limit_per_minute, state.rate_window_seconds = 2, 1.0
    _many_shipments(empty_world, 4)
    client = make_client(page_size=1)
    assert len(list(client.iter_shipments_created(WIDE_START, WIDE_END))) == 4
    statuses = [e[3] for e in shipments_logged(empty_world)]
    assert statuses == [200, 200, 200, 200]  # one record a page, two a window, no 429
    assert sleeper.waits and client.stats.throttled == 0


def test_pacing_spends_the_budget_without_waiting_while_it_lasts(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld, sleeper: RecordingSleep
) -> None:
    # 39 pages fit in ShipStation's 40 a minute: none of them waits for the window.
    empty_world.shipstation.rate_limit_per_minute = 40
    _many_shipments(empty_world, 39)
    client = make_client(page_size=1)
    assert len(list(client.iter_shipments_created(WIDE_START, WIDE_END))) == 39
    assert len(shipments_logged(empty_world)) == 39
    assert sleeper.waits == [] and client.stats.paced_seconds == 0
    assert client.stats.remaining == 1  # the reserve left for another user of the key


def test_persistent_429_gives_up(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    empty_world.shipstation.faults.throttle_next = 10
    empty_world.shipstation.faults.retry_after_seconds = 0
    client = make_client(max_attempts=2)
    with pytest.raises(ShipStationRateLimited) as caught:
        client.list_stores()
    assert caught.value.attempts == 2


def test_500_then_success(make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld) -> None:
    add_shipments(empty_world, shipment_record(1, "2024-09-17T10:00:00.0000000"))
    empty_world.shipstation.faults.fail_next = 1
    client = make_client()
    assert [s["shipmentId"] for s in client.iter_shipments_created(WIDE_START, WIDE_END)] == [1]
    assert [e[3] for e in shipments_logged(empty_world)] == [500, 200]
    assert client.stats.retries == 1


def test_persistent_500_raises_a_clear_server_error(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    empty_world.shipstation.faults.fail_next = 100
    client = make_client(max_attempts=3)
    with pytest.raises(ShipStationServerError) as caught:
        list(client.iter_shipments_created(WIDE_START, WIDE_END))
    text = str(caught.value)
    assert "Object reference not set to an instance of an object." in text
    assert "after 3 attempts" in text and "HTTP 500" in text and "GET /shipments" in text
    assert empty_world.shipstation.api_secret not in text
    assert len(shipments_logged(empty_world)) == 3


def test_html_gateway_error_is_summarised(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    faults = empty_world.shipstation.faults
    faults.fail_next, faults.fail_status = 100, 502
    with pytest.raises(ShipStationServerError) as caught:
        make_client(max_attempts=2).list_stores()
    assert "502 Bad Gateway" in str(caught.value)
    assert "<html>" not in str(caught.value)


def test_dropped_connection_then_success(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    add_shipments(empty_world, shipment_record(1, "2024-09-17T10:00:00.0000000"))
    empty_world.shipstation.faults.drop_next = 1
    client = make_client()
    assert [s["shipmentId"] for s in client.iter_shipments_created(WIDE_START, WIDE_END)] == [1]
    assert [e[3] for e in shipments_logged(empty_world)] == [0, 200]


def test_persistent_drops_raise_transport_error(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    empty_world.shipstation.faults.drop_next = 10
    with pytest.raises(ShipStationTransportError, match="RemoteProtocolError"):
        make_client(max_attempts=2).list_stores()


def test_other_4xx_is_not_retried(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    client = make_client()
    with pytest.raises(ShipStationRequestError) as caught:
        client.fetch_resource_url(f"{client.base_url}/shipments?createDateStart=not-a-date")
    assert caught.value.status == 400
    assert "not-a-date" in str(caught.value)  # the server's own explanation is kept
    assert len(empty_world.shipstation.log.entries) == 1


def test_stats_count_requests_per_endpoint(
    make_client: Callable[..., ShipStationClient], empty_world: SandboxWorld
) -> None:
    client = make_client()
    client.list_stores()
    client.list_stores()
    client.get_order(1)
    assert client.stats.requests["GET /stores"] == 2
    assert client.stats.requests["GET /orders/{orderId}"] == 1  # one key per endpoint, not per id
    assert client.stats.statuses[404] == 1
    assert client.stats.limit == 40 and client.stats.remaining == 37 and client.stats.reset is not None


def test_error_bodies_never_echo_credentials() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # A misbehaving proxy echoing the Authorization header and the secret back.
        body = {"Message": "x", "ExceptionMessage": f"bad {request.headers['Authorization']} secret-xyz"}
        return httpx.Response(500, content=json.dumps(body), headers={"content-type": "application/json"})

    with (
        ShipStationClient(
            "https://ssapi.example",
            "key-abc",
            "secret-xyz",
            max_attempts=1,
            transport=httpx.MockTransport(handler),
        ) as client,
        pytest.raises(ShipStationServerError) as caught,
    ):
        client.list_stores()
    text = str(caught.value)
    assert "secret-xyz" not in text and "key-abc" not in text
    assert base64.b64encode(b"key-abc:secret-xyz").decode() not in text


def test_parser_tolerates_nulls_and_numbers_as_strings_but_names_what_it_cannot_read() -> None:
    received = parse_shipment(
        {
            "shipmentId": 1,
            "orderNumber": 100038,  # a number where the docs show a string
            "batchNumber": 100301,
            "shipTo": None,
            "weight": None,
            "advancedOptions": None,
            "shipmentItems": None,
            "createDate": "2024-01-15T08:00:00.0000000",
            "voidDate": "",
        }
    )
    assert received.record is not None and received.record.order_number == "100038"
    assert received.record.void_date is None and received.record.ship_to_name is None
    missing = parse_shipment({"shipmentId": 2, "createDate": None})
    assert (missing.record_key, missing.record, missing.problem) == (
        "shipment:2",
        None,
        "createDate is missing",
    )
    order = parse_order({"orderId": "7", "orderDate": "2024-01-15T08:00:00.0000000", "customerId": "abc"})
    assert order.order_id == 7 and order.order_date == date(2024, 1, 15)
