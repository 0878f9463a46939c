"""Replay: put claimed records (queued, failed, named by an operator, or announced by a webhook)
through the same match/plan/write code as the scheduled sync."""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from shipnav_dagster.ledger import inbox
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.shipstation.v1.client import ShipStationClient
from shipnav_dagster.sync.intake import store_orders, store_records
from shipnav_dagster.sync.match import MatchSummary, match_open_records
from shipnav_dagster.sync.poll import fetch_missing_orders
from shipnav_dagster.sync.write import WriteOptions, WriteSummary, write_back
from shipnav_dagster.webhooks.fetch_url import fetch_url
from shipnav_dagster.webhooks.policy import is_allowed_resource_url

SHIPMENT_TYPES = ("SHIP_NOTIFY", "ITEM_SHIP_NOTIFY")


@dataclass
class InboxSummary:
    notifications: int = 0
    records: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass
class ReplaySummary:
    claimed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    inbox: InboxSummary = field(default_factory=InboxSummary)
    match: MatchSummary = field(default_factory=MatchSummary)
    write: WriteSummary = field(default_factory=WriteSummary)


def drain_inbox(
    ledger: Ledger,
    shipstation: ShipStationClient,
    *,
    api_url: str,
    run_id: str,
    log: Callable[[str], None] = lambda _m: None,
) -> InboxSummary:
    """Fetch each claimed notification's resource_url and store what it points at.

    Fetched with the client's page size and the shipment items (``fetch_url``), whatever page
    size the notification named."""
    summary = InboxSummary()
    for row in inbox.claim_pending(ledger, run_id):
        summary.notifications += 1
        url, kind = row["resource_url"], row["resource_type"]
        # Checked again here: the inbox may have been written by an older receiver.
        if not is_allowed_resource_url(url, api_url):
            inbox.mark_failed(
                ledger, row["id"], "resource_url is not on the ShipStation API host", final=True
            )
            summary.failed.append(str(row["id"]))
            continue
        try:
            items = shipstation.fetch_resource_url(fetch_url(url, shipstation.page_size))
            if kind in SHIPMENT_TYPES:
                result = store_records(ledger, "shipment", items, run_id=run_id, seen_via="webhook")
                summary.records += result.new + result.changed
            else:
                store_orders(ledger, items, run_id=run_id)
            inbox.mark_done(ledger, row["id"], len(items))
        except Exception as exc:  # recorded on the row and retried; one bad URL never stops the rest
            inbox.mark_failed(ledger, row["id"], f"{type(exc).__name__}: {exc}")
            summary.failed.append(str(row["id"]))
            log(f"webhook notification {row['id']} failed: {exc}")
    if summary.records:
        fetch_missing_orders(shipstation, ledger, summary.records)
    return summary


def replay(
    ledger: Ledger,
    nav: NavClient,
    options: WriteOptions,
    *,
    run_id: str,
    max_age: timedelta,
    record_keys: Sequence[str] = (),
    only_due: bool = False,
    dead_runs: Collection[str] = (),
    inbox_from: InboxSummary | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> ReplaySummary:
    """Claim the requested records atomically, then decide and write them like a sync does.

    Named records (``record_keys``, plus those a webhook announced) are taken whatever their
    status; otherwise every queued record is taken now, whatever its backoff (an operator's
    replay), or with ``only_due`` only those whose retry is due (the retry sensor). The run's
    claims are released by the resource's teardown, whatever fails.
    """
    summary = ReplaySummary()
    keys = list(record_keys)
    if inbox_from is not None:
        summary.inbox = inbox_from
        keys += summary.inbox.records
    named = bool(record_keys)
    summary.claimed = ledger.claim(
        run_id,
        due=only_due and not named,
        queued=not only_due and not named,
        keys=keys,
        dead_runs=dead_runs,
    )
    summary.unknown = sorted(set(record_keys) - set(ledger.record_rows(list(record_keys))))
    if summary.claimed:
        summary.match = match_open_records(
            ledger,
            nav,
            run_id=run_id,
            chunk=options.chunk,
            max_age=max_age,
            keys=summary.claimed,
            dry_run=not options.record_state,
            log=log,
        )
        orders = ledger.nav_orders_claimed_by(run_id)
        extra: dict[str, list[str]] = {}
        if not options.record_state:
            # A dry run changes no record, so its matches are not in the ledger: plan from the
            # decisions it just made.
            extra = summary.match.matched
            orders = sorted(set(orders) | set(extra))
        summary.write = write_back(
            ledger,
            nav,
            options,
            run_id=run_id,
            nav_order_nos=orders,
            dead_runs=dead_runs,
            extra_records=extra,
            log=log,
        )
    return summary
