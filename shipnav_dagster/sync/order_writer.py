"""Read-compare-write one NAV order: plan from what NAV holds and every record of the order, PATCH
what differs with the entity's ETag, journal each PATCH before and after it is sent.

On a stale ETag (409) both sides are read again, NAV and the order's ledger records (a poll may
have seen a void meanwhile), and the order is decided again. Failures are told apart by cause:
NAV down or refusing us is an outage (no record's fault), NAV refusing a value for this order is
permanent (parked with NAV's code, message and correlation id), and Business Central's read-only
posted shipments are learned once and never written again.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from shipnav_dagster.core.carriers import CarrierMapping
from shipnav_dagster.core.outcomes import FailureKind, OrderResult, applied_rows, finished
from shipnav_dagster.core.planning import EntityPatch, OrderPlan, plan_order
from shipnav_dagster.ledger import facts, journal
from shipnav_dagster.ledger.repository import Ledger, OrderRecords
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.entities import (
    LINE_SELECT,
    POSTED_SELECT,
    SALES_ORDER_SELECT,
    nav_order,
    posted_shipment,
    sales_line,
)
from shipnav_dagster.nav.errors import (
    NavConflictError,
    NavError,
    NavNotFoundError,
    NavValidationError,
    describe,
    is_outage,
    is_read_only,
)
from shipnav_dagster.sync.patch_batcher import PatchBatcher

MAX_CONFLICT_ROUNDS = 3
AGENT_REFUSED = "NAV refused the mapped Shipping Agent code (Internal_InvalidTableRelation)"


@dataclass
class WriteOptions:
    mapping: CarrierMapping
    tracking_max_length: int
    write_line_quantities: bool
    dry_run: bool
    max_concurrency: int
    chunk: int
    # NAV_PLATFORM: True (NAV 2013-2018), False (Business Central), None (not known: try, and
    # learn from NAV's first refusal).
    posted_writable: bool | None = None
    # False for an operator's dry-run replay: no record changes at all (decisions, would-be
    # changes and dry-run events are still written). A dry-run sync (SHIPNAV_DRY_RUN) records its
    # decisions in the records, as "matched, not written".
    record_state: bool = True
    # NAV_BATCH: PATCHes of different orders go to NAV in JSON $batch requests of up to 100
    # (Business Central); False for NAV 2013-2018 or NAV_BATCH=off.
    batch: bool = False


@dataclass
class OrderState:
    """What one write of one order works from; replaced as a whole when a conflict is re-read."""

    entity: dict[str, Any] | None  # the sales order, None when posting deleted it
    posted: list[dict[str, Any]]
    records: OrderRecords


class OrderWriter:
    def __init__(
        self,
        nav: NavClient,
        ledger: Ledger,
        options: WriteOptions,
        *,
        run_id: str,
        batcher: PatchBatcher | None = None,
    ) -> None:
        self.nav = nav
        self.batcher = batcher
        self.ledger = ledger
        self.options = options
        self.run_id = run_id
        learned = facts.get(ledger, facts.POSTED_SHIPMENTS_READ_ONLY)
        self._posted_writable = options.posted_writable
        if learned is not None and learned.value == "true":
            self._posted_writable = False  # NAV itself refused: that outranks any setting

    @property
    def posted_writable(self) -> bool:
        return self._posted_writable is not False

    # -- reading -------------------------------------------------------------------------------

    def reread(self, no: str) -> OrderState:
        entity = self.nav.get_sales_order(no, select=SALES_ORDER_SELECT)
        posted = self.nav.posted_shipments_for_orders([no], select=POSTED_SELECT, chunk=self.options.chunk)
        records = self.ledger.records_of_nav_orders([no]).get(no, OrderRecords())
        return OrderState(entity, posted, records)

    def _plan(self, no: str, state: OrderState, drop_agent: bool) -> OrderPlan:
        order = nav_order(state.entity) if state.entity is not None else None
        lines = None
        if order is not None and self.options.write_line_quantities:
            lines = [sales_line(x) for x in self.nav.sales_lines(order.no, select=LINE_SELECT)]
        return plan_order(
            order,
            state.records.records,
            self.options.mapping,
            tracking_max_length=self.options.tracking_max_length,
            posted=[posted_shipment(p) for p in state.posted],
            lines=lines,
            write_line_quantities=self.options.write_line_quantities,
            agent_refused=AGENT_REFUSED if drop_agent else None,
            posted_writable=self.posted_writable,
            nav_order_no=no,
        )

    # -- writing -------------------------------------------------------------------------------

    def _apply(self, patch: EntityPatch) -> None:
        if patch.entity == "SalesOrder":
            path = self.nav.order_path(patch.key)
        elif patch.entity == "PostedSalesShipment":
            path = self.nav.posted_shipment_path(patch.key)
        else:
            order_no, _, line_no = patch.key.rpartition("/")
            path = self.nav.line_path(order_no, int(line_no))
        if self.batcher is not None:
            self.batcher.patch(path, patch.etag, patch.changes)
        else:
            self.nav.patch_path(path, patch.etag, patch.changes)

    def _intend(self, no: str, patch: EntityPatch, state: OrderState) -> int:
        return journal.intend(
            self.ledger,
            run_id=self.run_id,
            nav_order_no=no,
            entity=patch.entity,
            entity_key=patch.key,
            changes=patch.changes,
            before=patch.before,
            record_keys=[r.record_key for r in state.records.records],
        )

    def _learn_read_only(self, exc: NavError) -> None:
        self._posted_writable = False
        facts.learn(
            self.ledger,
            facts.POSTED_SHIPMENTS_READ_ONLY,
            "true",
            detail=f"NAV answered a PATCH of a posted shipment with {describe(exc)}",
            run_id=self.run_id,
        )

    def write(
        self,
        no: str,
        state: OrderState,
        on_settled: Callable[[OrderResult, OrderState, list[journal.Applied]], None],
    ) -> None:
        """Write one order and hand its result, with the state it was decided from and the
        PATCHes NAV accepted (journalled as intended, to be settled as applied with the result),
        to ``on_settled``."""
        accepted: list[journal.Applied] = []
        if self.batcher is not None:
            with self.batcher.writer():
                result, final = self._write(no, state, accepted)
        else:
            result, final = self._write(no, state, accepted)
        on_settled(result, final, accepted)

    def _write(
        self, no: str, state: OrderState, accepted: list[journal.Applied]
    ) -> tuple[OrderResult, OrderState]:
        applied: list[EntityPatch] = []
        drop_agent = False
        plan: OrderPlan | None = None
        for _round in range(MAX_CONFLICT_ROUNDS):
            try:
                if state.entity is None and not state.posted:
                    return OrderResult(
                        no,
                        "failed",
                        f"NAV order {no} no longer exists and has no posted shipment",
                        None,
                        applied,
                        failure=FailureKind.RECORD,
                    ), state
                plan = self._plan(no, state, drop_agent)
                if self.options.dry_run:
                    return OrderResult(no, "dry_run", "dry run: nothing written", plan), state
                # Sales lines first: a header PATCH that changes Shipment_Date or the agent codes
                # is pushed to the lines by NAV (UpdateSalesLinesByFieldNo), which gives every line
                # a new ETag; a line PATCH (Qty_to_Ship) leaves the header's ETag alone.
                for patch in sorted(plan.patches, key=lambda p: p.entity != "SalesLine"):
                    self._send(no, patch, state, accepted)
                    applied.append(patch)
                if self.ledger.versions_of_order(no) != state.records.versions:
                    # ShipStation changed a record of this order while it was being written (a
                    # void seen by another run's poll, a new label matched to it): decide again
                    # from both sides now, so NAV is not left with what was true a moment ago.
                    state = self.reread(no)
                    continue
                return finished(no, plan, applied), state
            except _Conflict as conflict:
                state = self.reread(no)
                # A PATCH whose answer was lost is retried by the client and then meets 409 on
                # its own, now stale, ETag: if NAV holds exactly what it sent, it landed.
                if self._landed(conflict.patch, state):
                    accepted.append(
                        self._accepted(
                            no, conflict.patch, conflict.intent, state, "confirmed by re-reading NAV"
                        )
                    )
                    applied.append(conflict.patch)
                else:
                    journal.settle(self.ledger, conflict.intent, journal.NOT_APPLIED, "stale ETag (409)")
            except _ReadOnly:
                continue  # decided again without writing posted shipments
            except _Gone:
                state = self.reread(no)
            except _Refused as refused:
                exc = refused.error
                if exc.code == "Internal_InvalidTableRelation" and not drop_agent:
                    drop_agent = True
                    state = self.reread(no)
                    continue
                if exc.code == "Application_FieldValidationException":
                    # Status changed (Released) since the read: decide again from NAV's state.
                    fresh = self.reread(no)
                    if (
                        fresh.entity is not None
                        and state.entity is not None
                        and (fresh.entity.get("Status") != state.entity.get("Status"))
                    ):
                        state = fresh
                        continue
                return OrderResult(
                    no, "parked", f"NAV refused the change: {describe(exc)}", plan, applied, error=str(exc)
                ), state
            except (NavError, httpx.TransportError) as exc:
                if is_outage(exc):
                    return OrderResult(
                        no,
                        "failed",
                        f"NAV unavailable, written by the next run that reaches it: {exc}",
                        plan,
                        applied,
                        error=str(exc),
                        failure=FailureKind.OUTAGE,
                    ), state
                assert isinstance(exc, NavError)
                return OrderResult(
                    no, "parked", f"NAV refused the change: {describe(exc)}", plan, applied, error=str(exc)
                ), state
        return OrderResult(
            no,
            "failed",
            f"NAV kept reporting concurrent changes to order {no} ({MAX_CONFLICT_ROUNDS} rounds)",
            None,
            applied,
            failure=FailureKind.RECORD,
        ), state

    def _send(self, no: str, patch: EntityPatch, state: OrderState, accepted: list[journal.Applied]) -> None:
        intent = self._intend(no, patch, state)
        try:
            self._apply(patch)
        except NavConflictError:
            raise _Conflict(patch, intent) from None
        except NavNotFoundError as exc:
            # Deleted since it was read (posting shipped and invoiced it): decide again from what
            # is left, its posted shipments.
            journal.settle(self.ledger, intent, journal.NOT_APPLIED, describe(exc))
            raise _Gone from None
        except NavError as exc:
            journal.settle(self.ledger, intent, journal.FAILED, describe(exc))
            if patch.entity == "PostedSalesShipment" and is_read_only(exc):
                self._learn_read_only(exc)
                raise _ReadOnly from None
            if isinstance(exc, NavValidationError) or not is_outage(exc):
                raise _Refused(exc) from None
            raise
        except httpx.TransportError as exc:
            journal.settle(self.ledger, intent, journal.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        accepted.append(self._accepted(no, patch, intent, state))

    @staticmethod
    def _accepted(
        no: str, patch: EntityPatch, intent: int, state: OrderState, detail: str | None = None
    ) -> journal.Applied:
        keys = [r.record_key for r in state.records.records]
        return journal.Applied(intent, applied_rows(no, patch, keys), detail)

    def _landed(self, patch: EntityPatch, state: OrderState) -> bool:
        current: dict[str, Any] | None
        if patch.entity == "SalesOrder":
            current = state.entity
        elif patch.entity == "PostedSalesShipment":
            current = next((p for p in state.posted if p.get("No") == patch.key), None)
        else:
            order_no, _, line_no = patch.key.rpartition("/")
            lines = self.nav.sales_lines(order_no, select=LINE_SELECT)
            current = next((ln for ln in lines if str(ln.get("Line_No")) == line_no), None)
        return current is not None and all(same(current.get(k), v) for k, v in patch.changes.items())


class _Conflict(Exception):
    def __init__(self, patch: EntityPatch, intent: int) -> None:
        self.patch = patch
        self.intent = intent


class _ReadOnly(Exception):
    pass


class _Gone(Exception):
    pass


class _Refused(Exception):
    def __init__(self, error: NavError) -> None:
        self.error = error


def same(nav_value: Any, sent: Any) -> bool:
    """NAV echoes what was sent, possibly as another JSON type (10 vs 10.0, dates as text)."""
    if isinstance(sent, int | float) and not isinstance(sent, bool):
        try:
            return float(nav_value) == float(sent)
        except (TypeError, ValueError):
            return False
    return str(nav_value if nav_value is not None else "").strip() == str(sent).strip()
