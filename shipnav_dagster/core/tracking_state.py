"""Where a shipped ShipStation record stands against NAV, in the words of the people who ask
(finance at month-end, the operations lead after a reconciliation), and what to do next.

Pure decisions over the ledger status of a record and what NAV was read to hold: the month-end
report, the reconciliation and the tracking lag all use them, so they never disagree.
"""

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

from shipnav_dagster.core.model import NavOrder, NavPostedShipment, RecordStatus, ShipRecord
from shipnav_dagster.core.planning import active_labels


class TrackingState(StrEnum):
    """A shipped record's state for people; every state the report and reconciliation show."""

    IN_NAV = "in_nav"  # NAV holds the tracking (read back, not remembered)
    QUEUED = "queued"  # shipnav will write it: the next sync or retry, once its cause is gone
    AMBIGUOUS = "ambiguous"  # several NAV orders fit: nothing written until exactly one does
    PARKED = "parked"  # NAV cannot take it (or refused it for good): a person decides
    MISSING = "missing"  # neither in NAV nor explained: the ledger says written, NAV disagrees


STATE_ORDER = (
    TrackingState.IN_NAV,
    TrackingState.QUEUED,
    TrackingState.AMBIGUOUS,
    TrackingState.PARKED,
    TrackingState.MISSING,
)

# How core.carriers words a carrier that has no NAV shipping agent.
UNMAPPED_CARRIER = re.compile(r"carrier '[^']*' is not in the carrier mapping")
DONE = frozenset({RecordStatus.WRITTEN, RecordStatus.ALREADY_CORRECT})
_BY_STATUS: dict[str, TrackingState] = {
    RecordStatus.WRITTEN: TrackingState.IN_NAV,
    RecordStatus.ALREADY_CORRECT: TrackingState.IN_NAV,
    RecordStatus.PENDING: TrackingState.QUEUED,
    RecordStatus.MATCHED_PENDING: TrackingState.QUEUED,
    RecordStatus.NO_ORDER_YET: TrackingState.QUEUED,
    RecordStatus.NEEDS_ATTENTION: TrackingState.QUEUED,
    RecordStatus.FAILED: TrackingState.QUEUED,
    RecordStatus.AMBIGUOUS: TrackingState.AMBIGUOUS,
    RecordStatus.PARKED: TrackingState.PARKED,
    RecordStatus.INVALID: TrackingState.PARKED,
}


def tracking_state(status: str, nav_problem: str | None) -> TrackingState:
    """The state of a shipped, outbound record with a tracking number.

    ``nav_problem`` is why NAV does not hold the tracking, read back from NAV (None when it
    does); it only matters for a record the ledger calls done. A status with no outcome at all
    (a record shipnav never decided) is missing."""
    state = _BY_STATUS.get(status, TrackingState.MISSING)
    if state is TrackingState.IN_NAV and nav_problem is not None:
        return TrackingState.MISSING
    return state


def nav_problem(
    order: NavOrder | None,
    posted: Sequence[NavPostedShipment],
    records: Sequence[ShipRecord],
    tracking_max_length: int,
) -> str | None:
    """Why NAV does not hold the master tracking of an order's records (None when it does: on
    the sales order or one of its posted shipments)."""
    labels = active_labels(records)
    if not labels:
        return None
    master = (labels[0].tracking_number or "").strip()
    if len(master) > tracking_max_length:
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


def next_step(state: TrackingState, status: str, reason: str | None, record_key: str) -> str:
    """What a person does about a record in this state; empty when there is nothing to do."""
    text = reason or ""
    replay = f"`shipnav replay {record_key}`"
    if state is TrackingState.IN_NAV:
        # An unmapped carrier leaves the shipping agent unset. (An unmapped service is no finding:
        # the built-in mapping maps agents only, by design.)
        if UNMAPPED_CARRIER.search(text):
            return (
                "fix the mapping: add the carrier to SHIPNAV_MAPPING_FILE, then "
                f"{replay} sets the shipping agent"
            )
        return ""
    if state is TrackingState.QUEUED:
        if status == RecordStatus.NO_ORDER_YET:
            return (
                "create the NAV sales order (External Document No. = the ShipStation order number); "
                "the next sync writes it"
            )
        if status == RecordStatus.NEEDS_ATTENTION:
            return (
                "create the NAV order, or correct its External Document No. or customer name and "
                f"order date so it matches, then {replay}"
            )
        if status == RecordStatus.FAILED:
            return f"NAV was unavailable or busy: the retry sensor or {replay} writes it once NAV answers"
        if status == RecordStatus.MATCHED_PENDING:
            return f"decided in a dry run: {replay} (without --dry-run) writes it"
        return "nothing: the next sync decides it"
    if state is TrackingState.AMBIGUOUS:
        return (
            "make exactly one NAV order fit (remove the duplicate External Document No., or correct "
            f"the customer name or order date), then {replay}"
        )
    if state is TrackingState.PARKED:
        if "NAV_TRACKING_MAX_LENGTH" in text:
            return (
                "enter the tracking number in NAV by hand (it is longer than NAV's field), or raise "
                "NAV_TRACKING_MAX_LENGTH if your NAV holds more (50 from BC 27)"
            )
        if status == RecordStatus.INVALID:
            return "check the order in ShipStation: the record carries nothing shipnav can match on"
        return f"NAV refused the write for good: correct the order in NAV, then {replay}"
    if "no longer exists" in text:
        return "enter the tracking number on the posted shipment in NAV (the order was deleted by posting)"
    return f"{replay} writes the ShipStation tracking number back to NAV"


LagVerdict = Literal["ok", "warn", "fail"]


def lag_verdict(age_hours: float, *, warn_hours: float, fail_hours: float) -> LagVerdict:
    """Past the fail threshold fails, past the warn threshold warns."""
    if age_hours > fail_hours:
        return "fail"
    if age_hours > warn_hours:
        return "warn"
    return "ok"
