"""ShipStationV2Client against the V2 sandbox over real HTTP (and a MockTransport where the sandbox
cannot produce the case: voids out of order, a server refusing big pages or ignoring paging)."""

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import PACIFIC, SandboxWorld
from shipnav_dagster.shipstation.errors import (
    ShipStationAuthError,
    ShipStationError,
    ShipStationRateLimited,
    ShipStationServerError,
)
from shipnav_dagster.shipstation.v2.budget import RequestBudget
from shipnav_dagster.shipstation.v2.client import ShipStationV2Client
from tests.support.shipstation_v2_support import pacific
from tests.support.sync_harness import CountingLog

WIDE_START = datetime(2020, 1, 1, tzinfo=UTC)
WIDE_END = datetime(2030, 1, 1, tzinfo=UTC)


def utc_of(naive_pacific: datetime) -> datetime:
    return naive_pacific.replace(tzinfo=PACIFIC).astimezone(UTC)


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
) -> Iterator[Callable[..., ShipStationV2Client]]:
    made: list[ShipStationV2Client] = []

    def make(**overrides: Any) -> ShipStationV2Client:
        options: dict[str, Any] = {
            "sleep": sleeper,
            "backoff_initial": 0.01,
            "backoff_max": 0.05,
            "reset_margin": 0.1,
            "timeout": 10.0,
        }
        options.update(overrides)
        key = options.pop("api_key", empty_world.shipstation.v2.api_key)
        client = ShipStationV2Client(sandbox.shipstation_v2_url, key, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def logged(world: SandboxWorld, path: str) -> list[tuple[str, str, str, int]]:
    return [e for e in world.shipstation.v2.log.entries if e[1] == path]


def query_of(entry: tuple[str, str, str, int]) -> dict[str, str]:
    return dict(parse_qsl(entry[2]))


def labels(world: SandboxWorld, count: int, *, start: datetime, step: timedelta) -> list[dict[str, Any]]:
    """``count`` labels on their own orders, created ``step`` apart from ``start`` (naive Pacific)."""
    made = []
    for n in range(count):
        order = sc.add_ss_order(world, order_number=f"L{n:04d}", order_date=start - timedelta(hours=1))
        made.append(sc.buy_label(world, order["orderId"], created=start + n * step))
    return made


# -- the streams -----------------------------------------------------------------------------------


def test_created_labels_window_is_utc_ascending_completed_and_in_big_pages(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld
) -> None:
    made = labels(empty_world, 3, start=pacific(17, 10), step=timedelta(minutes=10))
    sc.void_label(empty_world, made[1]["shipmentId"], pacific(17, 12))
    client = make_client()
    # 10:00 PDT is 17:00 UTC; the window holds the first two labels, and the second is voided.
    found = list(client.iter_labels_created(utc_of(pacific(17, 10)), utc_of(pacific(17, 10, 10))))
    assert [f["label_id"] for f in found] == [f"se-{made[0]['shipmentId']}"]
    query = query_of(logged(empty_world, "/v2/labels")[-1])
    assert query == {
        "label_status": "completed",
        "created_at_start": "2024-09-17T17:00:00Z",
        "created_at_end": "2024-09-17T17:10:00Z",
        "sort_by": "created_at",
        "sort_dir": "asc",
        "page": "1",
        "page_size": "500",
    }


def test_voids_are_read_newest_first_until_older_than_the_window(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld
) -> None:
    made = labels(empty_world, 6, start=pacific(10, 9), step=timedelta(minutes=1))
    for n, label in enumerate(made):  # voided on six days, the last one most recently
        sc.void_label(empty_world, label["shipmentId"], pacific(11 + n, 9))
    empty_world.shipstation.v2.max_page_size = 2
    client = make_client()
    since = utc_of(pacific(14, 12))  # the voids of the 15th and 16th are new; the 14th is older
    found = list(client.iter_labels_voided(since, WIDE_END))
    numbers = [f["label_id"] for f in found]
    assert numbers[:3] == [f"se-{made[n]['shipmentId']}" for n in (5, 4, 3)]
    pages = logged(empty_world, "/v2/labels")
    # Page 1 (16th, 15th) and page 2 (14th, 13th) reach before the window: page 3 is never read.
    assert [query_of(p)["page"] for p in pages] == ["1", "2"]
    assert query_of(pages[0])["label_status"] == "voided" and query_of(pages[0])["sort_dir"] == "desc"


def test_voids_not_sorted_by_void_time_are_read_to_the_end() -> None:
    def label(n: int, voided_at: str) -> dict[str, Any]:
        return {"label_id": f"se-{n}", "voided": True, "voided_at": voided_at}

    pages = {  # page 1 already reaches before the window, but not newest first
        1: [
            label(1, "2024-09-16T00:00:00Z"),
            label(2, "2024-09-18T00:00:00Z"),
            label(3, "2024-09-01T00:00:00Z"),
        ],
        2: [label(4, "2024-08-01T00:00:00Z"), label(5, "2024-09-20T00:00:00Z")],
        3: [],
    }

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        return httpx.Response(200, json={"labels": pages[page], "total": 5, "page": page, "pages": 3})

    client = ShipStationV2Client("https://api.example", "k", transport=httpx.MockTransport(answer))
    found = list(client.iter_labels_voided(datetime(2024, 9, 10, tzinfo=UTC), WIDE_END))
    assert [f["label_id"] for f in found] == ["se-1", "se-2", "se-3", "se-4", "se-5"]


def test_fulfillments_by_create_date_and_shipments_by_modified_at(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld
) -> None:
    order = sc.add_ss_order(empty_world, order_number="F1", created=pacific(17, 8))
    made = sc.mark_shipped(empty_world, order["orderId"], tracking_number="1Z1", created=pacific(17, 9))
    client = make_client()
    window = (utc_of(pacific(17, 8, 30)), utc_of(pacific(17, 9, 30)))
    assert [f["fulfillment_id"] for f in client.iter_fulfillments_created(*window)] == [
        f"se-{made['fulfillmentId']}"
    ]
    assert (
        query_of(logged(empty_world, "/v2/fulfillments")[-1])["create_date_start"] == "2024-09-17T15:30:00Z"
    )
    # Marking it shipped modified the order at 09:00.
    assert [s["shipment_id"] for s in client.iter_shipments_modified(*window)] == [f"se-{order['orderId']}"]
    shipments_query = query_of(logged(empty_world, "/v2/shipments")[-1])
    assert shipments_query["modified_at_start"] == "2024-09-17T15:30:00Z"
    assert shipments_query["sort_by"] == "modified_at" and shipments_query["sort_dir"] == "asc"
    assert client.get_shipment(order["orderId"])["shipment_number"] == "F1"  # type: ignore[index]
    assert client.get_shipment(123) is None


def test_naive_or_reversed_windows_fail_at_the_call(make_client: Callable[..., ShipStationV2Client]) -> None:
    client = make_client()
    with pytest.raises(ValueError):
        client.iter_labels_created(datetime(2024, 1, 1), WIDE_END)
    with pytest.raises(ValueError):
        client.iter_labels_voided(WIDE_END, WIDE_START)


# -- paging ------------------------------------------------------------------------------------------


def test_paging_follows_total_when_the_server_caps_the_page_size(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld
) -> None:
    made = labels(empty_world, 5, start=pacific(17, 10), step=timedelta(minutes=1))
    empty_world.shipstation.v2.max_page_size = 2  # silently: asked for 500, served 2
    found = list(make_client().iter_labels_created(WIDE_START, WIDE_END))
    assert [f["label_id"] for f in found] == [f"se-{m['shipmentId']}" for m in made]
    queries = [query_of(p) for p in logged(empty_world, "/v2/labels")]
    # Each page is the first page from the last label read on (inclusive: that one comes again).
    assert [(q["page"], q["created_at_start"]) for q in queries] == [
        ("1", "2020-01-01T00:00:00Z"),
        ("1", "2024-09-17T17:01:00Z"),
        ("1", "2024-09-17T17:02:00Z"),
        ("1", "2024-09-17T17:03:00Z"),
    ]


def test_paging_while_new_labels_arrive_and_others_are_voided(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld
) -> None:
    """While the scan runs a label is voided (it leaves the completed list: every later label
    moves a place forward) and two are bought, one of them stamped inside the list (a late
    commit). Pages asked from the last label read on skip none and read none twice."""
    made = labels(empty_world, 9, start=pacific(17, 10), step=timedelta(minutes=1))
    empty_world.shipstation.v2.max_page_size = 3
    v2 = empty_world.shipstation.v2
    bought: list[dict[str, Any]] = []

    def meanwhile(method: str, path: str, status: int) -> None:
        if path == "/v2/labels" and len(logged(empty_world, "/v2/labels")) == 1:
            sc.void_label(empty_world, made[0]["shipmentId"], pacific(17, 11))
            bought.extend(labels(empty_world, 2, start=pacific(17, 10, 30), step=timedelta(minutes=30)))

    v2.log = CountingLog(v2.log.entries, meanwhile)
    found = [f["label_id"] for f in make_client().iter_labels_created(WIDE_START, WIDE_END)]
    assert len(found) == len(set(found)), "a label was read twice"
    expected = {f"se-{m['shipmentId']}" for m in made + bought}
    assert set(found) == expected  # nothing skipped, the voided one read before its void
    starts = [query_of(p)["created_at_start"] for p in logged(empty_world, "/v2/labels")]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_a_server_that_ignores_paging_is_refused() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"labels": [{"label_id": "se-1"}], "total": 5, "pages": 5})

    client = ShipStationV2Client("https://api.example", "k", transport=httpx.MockTransport(answer))
    with pytest.raises(ShipStationError, match="repeated the page before it"):
        list(client.iter_labels_created(WIDE_START, WIDE_END))


def test_without_total_pages_links_and_full_pages_are_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        items = [{"label_id": f"se-{page}{n}"} for n in range(2)] if page <= 3 else []
        links = (
            {"next": {"href": "https://elsewhere.example/v2/labels?page=9"}} if page == 1 else {"next": {}}
        )
        body = {"labels": items, "pages": 2 if page == 2 else None, "links": links}
        return httpx.Response(200, json=body)

    seen: list[str] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return answer(request)

    client = ShipStationV2Client(
        "https://api.example", "k", page_size=2, transport=httpx.MockTransport(recording)
    )
    found = list(client.iter_labels_created(WIDE_START, WIDE_END))
    assert len(found) == 6
    assert all(url.startswith("https://api.example/v2/labels?") for url in seen)  # links.next never used
    assert len(seen) == 4  # page 4 came back empty


def test_a_refused_page_size_is_made_smaller() -> None:
    sizes: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        size = request.url.params["page_size"]
        sizes.append(size)
        if int(size) > 100:
            body = {"request_id": "r-1", "errors": [{"message": "page_size must be 100 or less"}]}
            return httpx.Response(400, json=body)
        return httpx.Response(200, json={"labels": [{"label_id": "se-1"}], "total": 1, "page": 1, "pages": 1})

    client = ShipStationV2Client("https://api.example", "k", transport=httpx.MockTransport(answer))
    assert len(list(client.iter_labels_created(WIDE_START, WIDE_END))) == 1
    assert sizes == ["500", "100"] and client.page_size == 100


# -- errors, retries and the budget ------------------------------------------------------------------


def test_wrong_key_is_a_clear_auth_error_without_the_key(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld
) -> None:
    client = make_client(api_key="v2-key-that-must-not-leak")
    with pytest.raises(ShipStationAuthError) as caught:
        list(client.iter_labels_created(WIDE_START, WIDE_END))
    text = str(caught.value)
    assert "SHIPSTATION_API_KEY" in text and "V2 API key" in text and "SHIPSTATION_API_VERSION=v1" in text
    assert "v2-key-that-must-not-leak" not in text
    assert caught.value.status == 401 and len(logged(empty_world, "/v2/labels")) == 1  # never retried


def test_a_v1_key_and_secret_against_v1_paths_of_the_v2_host(
    sandbox: SandboxServers, empty_world: SandboxWorld
) -> None:
    """A V1 key on V2 is refused with 401; the message says which generation wants what."""
    client = ShipStationV2Client(sandbox.shipstation_v2_url, empty_world.shipstation.api_key)
    with client, pytest.raises(ShipStationAuthError, match="a V1 key \\+ secret pair does not work with V2"):
        client.probe("/v2/labels")


def test_429_waits_retry_after_then_succeeds(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld, sleeper: RecordingSleep
) -> None:
    labels(empty_world, 1, start=pacific(17, 10), step=timedelta(minutes=1))
    empty_world.shipstation.v2.faults.throttle_next = 1
    empty_world.shipstation.v2.faults.retry_after_seconds = 1
    client = make_client()
    assert len(list(client.iter_labels_created(WIDE_START, WIDE_END))) == 1
    assert [e[3] for e in logged(empty_world, "/v2/labels")] == [429, 200]
    assert sleeper.waits == [pytest.approx(1.1)]  # Retry-After plus the margin
    assert client.stats.throttled == 1 and client.stats.retries == 1


def test_the_real_limit_is_waited_out_by_retry_after(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld
) -> None:
    v2 = empty_world.shipstation.v2
    v2.rate_limit_per_minute, v2.rate_window_seconds, v2.max_page_size = 2, 1.0, 1
    labels(empty_world, 4, start=pacific(17, 10), step=timedelta(minutes=1))
    client = make_client()
    assert len(list(client.iter_labels_created(WIDE_START, WIDE_END))) == 4
    statuses = [e[3] for e in logged(empty_world, "/v2/labels")]
    assert 429 in statuses and statuses[-1] == 200


def test_persistent_429_gives_up_with_the_v2_budget_named(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld
) -> None:
    empty_world.shipstation.v2.faults.throttle_next = 10
    empty_world.shipstation.v2.faults.retry_after_seconds = 0
    with pytest.raises(ShipStationRateLimited, match="200 requests per minute") as caught:
        make_client(max_attempts=2).probe("/v2/labels")
    assert caught.value.attempts == 2


def test_500_then_success_and_persistent_500(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld
) -> None:
    labels(empty_world, 1, start=pacific(17, 10), step=timedelta(minutes=1))
    empty_world.shipstation.v2.faults.fail_next = 1
    client = make_client()
    assert len(list(client.iter_labels_created(WIDE_START, WIDE_END))) == 1
    assert [e[3] for e in logged(empty_world, "/v2/labels")] == [500, 200]
    empty_world.shipstation.v2.faults.fail_next = 100
    with pytest.raises(ShipStationServerError) as caught:
        make_client(max_attempts=3).probe("/v2/labels")
    assert caught.value.attempts == 3 and "after 3 attempts" in str(caught.value)


def test_v2_error_bodies_are_described_with_their_request_id(
    make_client: Callable[..., ShipStationV2Client],
) -> None:
    with pytest.raises(ShipStationError) as caught:
        make_client().probe("/v2/labels", {"created_at_start": "yesterday"})
    text = str(caught.value)
    assert "created_at_start must be an ISO-8601 date-time" in text and "[invalid_field_value]" in text
    assert "request_id" in text and caught.value.status == 400


def test_the_budget_waits_only_at_the_reserve() -> None:
    now = [0.0]
    budget = RequestBudget(limit=5, window_seconds=60, reserve=1, clock=lambda: now[0])
    for _ in range(4):
        assert budget.delay() == 0
        budget.spend()
        now[0] += 1
    # Four sent at 0, 1, 2 and 3 s: the fifth would eat the reserve; it waits for the first to age out.
    assert budget.delay() == pytest.approx(56.0)
    now[0] = 60.5
    assert budget.delay() == 0 and budget.remaining() == 2


def test_fetch_resource_url_pages_with_its_own_page_size(
    make_client: Callable[..., ShipStationV2Client], empty_world: SandboxWorld, sandbox: SandboxServers
) -> None:
    made = labels(empty_world, 3, start=pacific(17, 10), step=timedelta(minutes=1))
    for label in made:
        label["batchNumber"] = "4242"
    empty_world.shipstation.v2.max_page_size = 2
    url = f"{sandbox.shipstation_v2_url}/v2/labels?batch_id=se-4242&page_size=1&page=7"
    found = make_client().fetch_resource_url(url)
    assert sorted(f["label_id"] for f in found) == sorted(f"se-{m['shipmentId']}" for m in made)
    queries = [query_of(p) for p in logged(empty_world, "/v2/labels")]
    assert [(q["page"], q["page_size"], q["batch_id"]) for q in queries] == [
        ("1", "500", "se-4242"),
        ("2", "500", "se-4242"),
    ]


@pytest.mark.parametrize("status", [400, 401, 500])
def test_a_server_echoing_the_key_never_puts_it_in_an_error(status: int) -> None:
    key = "v2-key-echoed-by-a-proxy"

    def echo(request: httpx.Request) -> httpx.Response:
        sent = request.headers["API-Key"]
        body = {"request_id": f"r-{sent}", "errors": [{"message": f"you sent API-Key {sent}"}]}
        return httpx.Response(status, json=body)

    client = ShipStationV2Client(
        "https://api.example", key, transport=httpx.MockTransport(echo), max_attempts=1
    )
    with client, pytest.raises(ShipStationError) as caught:
        client.probe("/v2/labels")
    assert key not in str(caught.value) and key not in repr(caught.value.__dict__)
