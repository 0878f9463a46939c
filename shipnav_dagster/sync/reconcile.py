"""Month-end trust: is every shipped ShipStation record reflected in NAV, or explained?

Over a sliding window, each non-voided outbound label and fulfillment must either be in NAV
(read back now, not remembered) or carry a recorded reason it is not. Anything else is a gap.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from shipnav_dagster.core.model import NavOrder, NavPostedShipment, RecordStatus, ShipRecord
from shipnav_dagster.core.planning import active_labels
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import as_utc
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.entities import POSTED_SELECT, SALES_ORDER_SELECT, nav_order, posted_shipment

EXPLAINED = (
    RecordStatus.NO_ORDER_YET,
    RecordStatus.NEEDS_ATTENTION,
    RecordStatus.AMBIGUOUS,
    RecordStatus.PARKED,
    RecordStatus.FAILED,
    RecordStatus.INVALID,
    RecordStatus.IGNORED,
    RecordStatus.VOIDED,
)
GRACE = timedelta(hours=1)  # a record seen in the last hour may simply not be processed yet


@dataclass(frozen=True)
class Gap:
    record_key: str
    nav_order_no: str | None
    problem: str


@dataclass
class Reconciliation:
    checked: int
    reflected: int
    explained: int
    gaps: list[Gap]


def reconcile(
    ledger: Ledger, nav: NavClient, *, now: datetime, days: int, chunk: int, tracking_max_length: int
) -> Reconciliation:
    since = now - timedelta(days=days)
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.records.c.record_key,
                t.records.c.status,
                t.records.c.status_reason,
                t.records.c.nav_order_no,
                t.records.c.first_seen_at,
            )
            .where(t.records.c.created_at >= since)
            .where(t.records.c.voided.is_(False))
            .where(t.records.c.is_return.is_(False))
        ).all()
    gaps: list[Gap] = []
    explained = 0
    to_read: dict[str, list[str]] = {}
    for key, status, reason, nav_no, first_seen in rows:
        if status in EXPLAINED and reason:
            explained += 1
        elif status in (RecordStatus.WRITTEN, RecordStatus.ALREADY_CORRECT) and nav_no:
            to_read.setdefault(nav_no, []).append(key)
        elif first_seen is not None and as_utc(first_seen) > now - GRACE:
            explained += 1  # seen moments ago; the next sync decides it
        else:
            gaps.append(Gap(key, nav_no, f"status {status!r} with no recorded outcome"))
    reflected = 0
    if to_read:
        orders = {
            e["No"]: nav_order(e)
            for e in nav.find_sales_orders("No", sorted(to_read), select=SALES_ORDER_SELECT, chunk=chunk)
        }
        posted: dict[str, list[NavPostedShipment]] = {}
        for p in nav.posted_shipments_for_orders(sorted(to_read), select=POSTED_SELECT, chunk=chunk):
            posted.setdefault(p.get("Order_No") or "", []).append(posted_shipment(p))
        records = ledger.records_of_nav_orders(sorted(to_read))
        for nav_no, keys in to_read.items():
            found = _reflected(
                orders.get(nav_no),
                posted.get(nav_no, []),
                records[nav_no].records if nav_no in records else [],
                tracking_max_length,
            )
            for key in keys:
                if found is None:
                    reflected += 1
                else:
                    gaps.append(Gap(key, nav_no, found))
    return Reconciliation(checked=len(rows), reflected=reflected, explained=explained, gaps=gaps)


def _reflected(
    order: NavOrder | None, posted: Sequence[NavPostedShipment], records: Sequence[ShipRecord], max_len: int
) -> str | None:
    """None when NAV carries the order's master tracking (on the order or a posted shipment)."""
    labels = active_labels(records)
    if not labels:
        return None
    master = (labels[0].tracking_number or "").strip()
    if len(master) > max_len:
        return None  # parked for a reason that is on the record
    held = {p.package_tracking_no.strip() for p in posted}
    if order is not None:
        held.add(order.package_tracking_no.strip())
    if master in held:
        return None
    if order is None and not posted:
        return "the NAV order no longer exists and no posted shipment carries the tracking number"
    current = order.package_tracking_no if order is not None else ", ".join(sorted(held))
    return f"NAV holds {current!r} instead of the master tracking {master!r}"
