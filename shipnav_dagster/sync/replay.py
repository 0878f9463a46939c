"""Replay: put claimed records (queued, failed, named by an operator, or announced by a webhook)
through the same match/plan/write code as the scheduled sync."""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from shipnav_dagster.ledger import inbox
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.shipstation.source import ShipStationSource
from shipnav_dagster.sync.intake import store_orders, store_records
from shipnav_dagster.sync.match import MatchSummary, match_open_records
from shipnav_dagster.sync.poll import fetch_missing_orders
from shipnav_dagster.sync.write import WriteOptions, WriteSummary, write_back
from shipnav_dagster.webhooks.policy import resource_url_problem


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
    source: ShipStationSource,
    *,
    run_id: str,
    log: Callable[[str], None] = lambda _m: None,
) -> InboxSummary:
    """Fetch each claimed notification's resource_url and store what it points at.

    The source fetches with its own page size (and, on V1, the shipment items), whatever the
    notification named; records are upserted by id, so a notification delivered twice, or a
    record seen by the poll too, is stored once."""
    summary = InboxSummary()
    for row in inbox.claim_pending(ledger, run_id):
        summary.notifications += 1
        url, kind = row["resource_url"], row["resource_type"]
        points_at = source.notification_kind(kind)
        # Checked again here: the inbox may have been written by an older receiver, or under the
        # other API generation's settings.
        problem = (
            f"a {kind} notification is not one of ShipStation API {source.generation.upper()}"
            if points_at is None
            else resource_url_problem(url, source.api_url, source.generation, kind)
        )
        if problem is not None:
            inbox.mark_failed(ledger, row["id"], f"not fetched: {problem}", final=True)
            summary.failed.append(str(row["id"]))
            continue
        try:
            items = source.fetch_notification(url)
            if points_at == "order":
                store_orders(ledger, source.parse_order, items, run_id=run_id)
            else:
                parse = source.parser(points_at)  # type: ignore[arg-type]  # shipment | fulfillment
                result = store_records(ledger, parse, items, run_id=run_id, seen_via="webhook")
                summary.records += result.new + result.changed
            inbox.mark_done(ledger, row["id"], len(items))
        except Exception as exc:  # recorded on the row and retried; one bad URL never stops the rest
            inbox.mark_failed(ledger, row["id"], f"{type(exc).__name__}: {exc}")
            summary.failed.append(str(row["id"]))
            log(f"webhook notification {row['id']} failed: {exc}")
    if summary.records:
        fetch_missing_orders(source, ledger, summary.records)
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
