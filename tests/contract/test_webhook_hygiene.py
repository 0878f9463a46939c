"""Issue #11, webhook hygiene, over real HTTP (the receiver in uvicorn, the ShipStation sandbox):
the page size a run fetches a ``resource_url`` with, the inbox cap (503 with Retry-After,
nothing dropped) and the pruning of processed notifications, on SQLite and PostgreSQL.
"""

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import sqlalchemy as sa

from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import utcnow
from shipnav_dagster.ledger.inbox import (
    claim_pending,
    counts_by_status,
    mark_done,
    mark_failed,
    prune_processed,
    store_notification,
    unprocessed_at_least,
)
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers, ThreadedServer
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.settings import Settings, SettingsError, load_settings
from shipnav_dagster.shipstation.v1.client import ShipStationClient
from shipnav_dagster.shipstation.v1.source import V1Source
from shipnav_dagster.sync.replay import drain_inbox
from shipnav_dagster.webhooks.app import app_from_settings, create_app
from shipnav_dagster.webhooks.fetch_url import MAX_PAGE_SIZE, fetch_url
from tests.support.sync_harness import ago, clean_environment

TOKEN = "hygiene-token-0123456789"
V1 = "https://ssapi.shipstation.com"

# --------------------------------------------------------------------------------------------
# The URL a run fetches
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "fetched"),
    [
        (
            f"{V1}/shipments?batchId=144015674&includeShipmentItems=False&pageSize=1",
            f"{V1}/shipments?batchId=144015674&includeShipmentItems=True&pageSize=500",
        ),
        (f"{V1}/shipments?PAGESIZE=2&batchId=7", f"{V1}/shipments?batchId=7&pageSize=500"),
        (f"{V1}/shipments?page%53ize=3&batchId=7", f"{V1}/shipments?batchId=7&pageSize=500"),
        (f"{V1}/shipments?pageSize=1&pageSize=2", f"{V1}/shipments?pageSize=500"),
        (
            "https://ssapi11.shipstation.com/orders?storeID=123456&importBatch=a%20b+c",
            "https://ssapi11.shipstation.com/orders?storeID=123456&importBatch=a%20b+c&pageSize=500",
        ),
        (f"{V1}/shipments", f"{V1}/shipments?pageSize=500"),
        (
            f"{V1}/shipments?includeShipmentItems=true",
            f"{V1}/shipments?includeShipmentItems=true&pageSize=500",
        ),
    ],
)
def test_fetch_url_sets_the_page_size_and_keeps_everything_else(sent: str, fetched: str) -> None:
    assert fetch_url(sent) == fetched


def test_fetch_url_page_size_bounds() -> None:
    assert fetch_url(f"{V1}/orders?pageSize=9", 100) == f"{V1}/orders?pageSize=100"
    for size in (0, MAX_PAGE_SIZE + 1):
        with pytest.raises(ValueError):
            fetch_url(f"{V1}/orders", size)


# --------------------------------------------------------------------------------------------
# Fixtures: a ledger on each database, a receiver on it
# --------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    ledger = Ledger(url).create_all()
    yield ledger
    ledger.dispose()


StartReceiver = Callable[..., str]


@pytest.fixture
def start_receiver(ledger: Ledger) -> Iterator[StartReceiver]:
    """Start the receiver on ``ledger`` with the given options; returns its webhook URL."""
    servers: list[ThreadedServer] = []

    def start(api_url: str = V1, **options: Any) -> str:
        server = ThreadedServer(create_app(token=TOKEN, api_url=api_url, ledger=ledger, **options))
        servers.append(server)
        server.start()
        return f"{server.url}/webhooks/shipstation/{TOKEN}"

    yield start
    for server in servers:
        server.stop()


def post(endpoint: str, url: str, kind: str = "SHIP_NOTIFY") -> httpx.Response:
    return httpx.post(endpoint, json={"resource_url": url, "resource_type": kind}, timeout=10)


def inbox_urls(ledger: Ledger) -> list[str]:
    with ledger.engine.connect() as conn:
        return list(conn.execute(sa.select(t.inbox.c.resource_url).order_by(t.inbox.c.id)).scalars())


# --------------------------------------------------------------------------------------------
# Page size: a notification with pageSize=1 is fetched 500 a page
# --------------------------------------------------------------------------------------------


def test_a_notification_with_page_size_1_is_fetched_in_one_request(
    ledger: Ledger, start_receiver: StartReceiver, sandbox: SandboxServers, empty_world: SandboxWorld
) -> None:
    world = empty_world
    world.shipstation.rate_limit_per_minute = 10_000
    labels = []
    for n in range(3):
        order, _ = sc.add_customer_order(world, order_number=f"PS-{n}", order_date=ago(hours=2))
        labels.append(sc.buy_label(world, order["orderId"], batch_number="880001"))
    endpoint = start_receiver(api_url=sandbox.shipstation_url)
    sent = f"{sandbox.shipstation_url}/shipments?batchId=880001&includeShipmentItems=False&pageSize=1"
    assert post(endpoint, sent).json() == {"status": "queued"}

    before = len(world.shipstation.log.entries)
    source = V1Source(
        ShipStationClient(sandbox.shipstation_url, world.shipstation.api_key, world.shipstation.api_secret)
    )
    try:
        summary = drain_inbox(ledger, source, run_id="run-ps")
    finally:
        source.close()
    assert summary.notifications == 1 and not summary.failed
    assert sorted(summary.records) == sorted(f"shipment:{label['shipmentId']}" for label in labels)
    fetches = [e for e in world.shipstation.log.entries[before:] if e[1] == "/shipments"]
    assert len(fetches) == 1, fetches
    query = dict(parse_qsl(fetches[0][2]))
    assert query["pageSize"] == "500" and query["batchId"] == "880001"
    assert query["includeShipmentItems"] == "True"
    assert counts_by_status(ledger) == {"done": 1}


# --------------------------------------------------------------------------------------------
# The cap: 503 with Retry-After while full; nothing stored is dropped
# --------------------------------------------------------------------------------------------


def test_a_full_inbox_answers_503_and_keeps_what_it_has(
    ledger: Ledger, start_receiver: StartReceiver
) -> None:
    endpoint = start_receiver(max_pending=2)
    first, second, third = (f"{V1}/shipments?batchId={n}" for n in (1, 2, 3))
    assert post(endpoint, first).json() == {"status": "queued"}
    assert post(endpoint, first).json() == {"status": "duplicate"}
    assert post(endpoint, second).json() == {"status": "queued"}
    full = post(endpoint, third)
    assert full.status_code == 503
    assert full.headers["Retry-After"] == "300"
    assert "send this one again later" in full.json()["error"]
    assert inbox_urls(ledger) == [first, second]  # nothing dropped, nothing added

    # A claimed row still waits to be processed; a processed one makes room.
    [item] = claim_pending(ledger, "run-1", limit=1)
    assert post(endpoint, third).status_code == 503
    mark_done(ledger, item.id, records_found=0)
    assert post(endpoint, third).json() == {"status": "queued"}
    assert inbox_urls(ledger) == [first, second, third]


def test_unprocessed_at_least_counts_pending_and_claimed_only(ledger: Ledger) -> None:
    for n in range(4):
        store_notification(ledger, "ORDER_NOTIFY", f"{V1}/orders?importBatch={n}")
    done, failed, claimed = claim_pending(ledger, "run-1", limit=3)
    mark_done(ledger, done.id, 1)
    mark_failed(ledger, failed.id, "refused", final=True)
    del claimed  # still claimed: waiting
    assert unprocessed_at_least(ledger, 2)
    assert not unprocessed_at_least(ledger, 3)
    assert unprocessed_at_least(ledger, 0)


# --------------------------------------------------------------------------------------------
# Retention: processed rows are pruned; a duplicate is one still in the inbox
# --------------------------------------------------------------------------------------------


def _processed(ledger: Ledger, url: str, *, days_ago: float, failed: bool = False) -> None:
    when = utcnow() - timedelta(days=days_ago)
    assert store_notification(ledger, "SHIP_NOTIFY", url, now=when)
    [item] = [i for i in claim_pending(ledger, "old-run", now=when) if i.resource_url == url]
    if failed:
        mark_failed(ledger, item.id, "refused", final=True, now=when)
    else:
        mark_done(ledger, item.id, 1, now=when)


def test_the_receiver_prunes_processed_rows_older_than_the_retention(
    ledger: Ledger, start_receiver: StartReceiver
) -> None:
    old_done, old_failed, recent_done, old_pending, retrying = (
        f"{V1}/shipments?batchId={name}" for name in ("old-done", "old-failed", "recent", "waiting", "retry")
    )
    _processed(ledger, old_done, days_ago=20)
    _processed(ledger, old_failed, days_ago=20, failed=True)
    _processed(ledger, recent_done, days_ago=1)
    store_notification(ledger, "SHIP_NOTIFY", old_pending, now=utcnow() - timedelta(days=30))
    store_notification(ledger, "SHIP_NOTIFY", retrying, now=utcnow() - timedelta(days=30))
    [item] = [i for i in claim_pending(ledger, "run-2") if i.resource_url == retrying]
    assert mark_failed(ledger, item.id, "timeout") == "pending"  # to be retried: never pruned

    endpoint = start_receiver(retention=timedelta(days=14))  # prunes when it starts
    assert sorted(inbox_urls(ledger)) == sorted([recent_done, old_pending, retrying])
    # Within the retention a URL already processed is a duplicate; after it, a new notification.
    assert post(endpoint, recent_done).json() == {"status": "duplicate"}
    assert post(endpoint, old_done).json() == {"status": "queued"}


def test_prune_processed_deletes_only_processed_rows(ledger: Ledger) -> None:
    _processed(ledger, f"{V1}/orders?importBatch=a", days_ago=3)
    _processed(ledger, f"{V1}/orders?importBatch=b", days_ago=3, failed=True)
    store_notification(ledger, "ORDER_NOTIFY", f"{V1}/orders?importBatch=c", now=utcnow() - timedelta(days=9))
    assert prune_processed(ledger, timedelta(days=4)) == 0
    assert prune_processed(ledger, timedelta(days=2)) == 2
    assert counts_by_status(ledger) == {"pending": 1}


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_webhook_settings_defaults(no_env: None) -> None:
    settings = load_settings()
    assert settings.shipnav_webhook_retention_days == 14
    assert settings.shipnav_webhook_max_pending == 10_000


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "SHIPNAV_WEBHOOK_RETENTION_DAYS",
            "0",
            "SHIPNAV_WEBHOOK_RETENTION_DAYS: expected a whole number of days",
        ),
        ("SHIPNAV_WEBHOOK_RETENTION_DAYS", "two weeks", "SHIPNAV_WEBHOOK_RETENTION_DAYS: expected"),
        ("SHIPNAV_WEBHOOK_MAX_PENDING", "-5", "SHIPNAV_WEBHOOK_MAX_PENDING: expected a whole number"),
        ("SHIPNAV_WEBHOOK_MAX_PENDING", "lots", "SHIPNAV_WEBHOOK_MAX_PENDING: expected"),
    ],
)
def test_invalid_webhook_settings_name_the_variable(
    no_env: None, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert expected in str(err.value)


def test_the_receiver_from_settings_uses_the_cap(ledger: Ledger) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        shipstation_api_version="v1",
        shipnav_webhook_token=TOKEN,
        shipnav_webhook_max_pending=1,
    )
    with ThreadedServer(app_from_settings(settings, ledger)) as base:
        endpoint = f"{base}/webhooks/shipstation/{TOKEN}"
        assert post(endpoint, f"{V1}/shipments?batchId=1").status_code == 200
        assert post(endpoint, f"{V1}/shipments?batchId=2").status_code == 503
