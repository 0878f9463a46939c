"""What a write means for the ledger: the order's result, each record's final status and why,
and the audit rows of every planned, applied or skipped NAV field. Pure decisions."""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shipnav_dagster.core.model import RecordStatus, ShipRecord
from shipnav_dagster.core.planning import EntityPatch, OrderPlan


class FailureKind(StrEnum):
    """Why a write failed, which decides when it is tried again."""

    OUTAGE = "outage"  # NAV unreachable, throttling, credentials: the next run that reaches NAV
    RECORD = "record"  # about this order (it vanished, kept changing): backoff


@dataclass(frozen=True)
class Outcome:
    record_key: str
    status: str
    reason: str
    nav_order_no: str | None = None
    failure: FailureKind | None = None  # set for status failed
    version: int | None = None  # the record version the outcome was decided from


@dataclass
class OrderResult:
    nav_order_no: str
    outcome: str  # written | already_correct | dry_run | failed | parked
    reason: str
    plan: OrderPlan | None = None
    applied: list[EntityPatch] = field(default_factory=list)
    error: str | None = None
    failure: FailureKind | None = None  # set for outcome failed: when it is tried again


def finished(no: str, plan: OrderPlan, applied: list[EntityPatch]) -> OrderResult:
    if plan.parked and not applied:
        return OrderResult(no, "parked", "; ".join(plan.parked.values()), plan, applied)
    if applied:
        fields = ", ".join(f"{p.entity} {p.key}: {', '.join(p.changes)}" for p in applied)
        return OrderResult(no, "written", f"wrote {fields}", plan, applied)
    return OrderResult(
        no, "already_correct", "NAV already holds these values; nothing written", plan, applied
    )


def record_outcomes(
    result: OrderResult,
    records: Sequence[ShipRecord],
    pending: Collection[str],
    versions: Mapping[str, int] | None = None,
) -> list[Outcome]:
    """The status each of this order's open records ends with, and why (``versions``: the
    record versions the result was decided from, so a record changed meanwhile is left open)."""
    outcomes: dict[str, tuple[str, str]] = {}
    plan = result.plan
    master = plan.master_key if plan else None
    skips = "; ".join(sorted({f"{s.field} not written: {s.reason}" for s in plan.skips})) if plan else ""
    for r in records:
        if r.record_key not in pending:
            continue
        if result.outcome == "failed":
            outcomes[r.record_key] = (RecordStatus.FAILED, result.reason)
        elif r.is_return:
            outcomes[r.record_key] = (RecordStatus.IGNORED, "return label: not outbound tracking")
        elif r.voided:
            outcomes[r.record_key] = (
                RecordStatus.VOIDED,
                f"label voided; NAV order {result.nav_order_no} follows the remaining labels",
            )
        elif not (r.tracking_number or "").strip():
            outcomes[r.record_key] = (RecordStatus.IGNORED, "no tracking number on the record")
        elif plan and r.record_key in plan.parked:
            outcomes[r.record_key] = (RecordStatus.PARKED, plan.parked[r.record_key])
        elif result.outcome == "dry_run":
            outcomes[r.record_key] = (RecordStatus.MATCHED_PENDING, "dry run: decided, nothing written")
        elif result.outcome == "parked":
            outcomes[r.record_key] = (RecordStatus.PARKED, result.reason)
        else:
            role = (
                "master tracking"
                if r.record_key == master
                else (f"additional package; NAV holds the master {plan.master_tracking if plan else ''}")
            )
            reason = f"{role}: {result.reason}" + (f"; {skips}" if skips else "")
            outcomes[r.record_key] = (result.outcome, reason)
    return [
        Outcome(
            key,
            status,
            reason,
            result.nav_order_no,
            failure=(result.failure or FailureKind.RECORD) if status == RecordStatus.FAILED else None,
            version=(versions or {}).get(key),
        )
        for key, (status, reason) in outcomes.items()
    ]


def change_rows(
    result: OrderResult, records: Sequence[ShipRecord], *, applied_recorded: bool = False
) -> list[dict[str, Any]]:
    """Ledger rows for every planned field change and skip of one order. ``applied_recorded``:
    the applied ones are in the ledger already (the writer records each PATCH as it lands)."""
    plan = result.plan
    keys = [r.record_key for r in records]
    rows: list[dict[str, Any]] = []
    applied = {id(p) for p in result.applied}
    # Patches applied in an earlier conflict round are not in the final plan (NAV already held
    # their values when it was made), but they were written and belong in the audit trail.
    patches = [] if applied_recorded else list(result.applied)
    patches += [p for p in (plan.patches if plan else []) if id(p) not in applied]
    for patch in patches:
        if id(patch) in applied:
            status = "applied"
        elif result.outcome == "dry_run":
            status = "dry_run"
        elif result.outcome in ("failed", "parked"):
            status = "failed"
        else:
            status = "planned"
        for name, after in patch.changes.items():
            rows.append(
                {
                    "nav_order_no": result.nav_order_no,
                    "entity": patch.entity,
                    "entity_key": patch.key,
                    "field": name,
                    "before": patch.before.get(name),
                    "after": after,
                    "status": status,
                    "reason": result.error if status == "failed" else None,
                    "record_keys": keys,
                }
            )
    for skip in plan.skips if plan else []:
        rows.append(
            {
                "nav_order_no": result.nav_order_no,
                "entity": skip.entity,
                "entity_key": skip.key,
                "field": skip.field,
                "before": None,
                "after": None,
                "status": "skipped",
                "reason": skip.reason,
                "record_keys": keys,
            }
        )
    return rows


def applied_rows(nav_order_no: str, patch: EntityPatch, record_keys: Sequence[str]) -> list[dict[str, Any]]:
    """The audit rows of one PATCH NAV accepted."""
    return [
        {
            "nav_order_no": nav_order_no,
            "entity": patch.entity,
            "entity_key": patch.key,
            "field": name,
            "before": patch.before.get(name),
            "after": after,
            "status": "applied",
            "reason": None,
            "record_keys": list(record_keys),
        }
        for name, after in patch.changes.items()
    ]
