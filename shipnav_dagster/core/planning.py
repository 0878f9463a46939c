"""The NAV state one sales order should have, given every ShipStation record known for it. Pure.

The plan depends on the set of records, never on the one that just arrived, so replays, voids,
re-labels and out-of-order arrival converge to the same NAV values. Values are never truncated:
a tracking number NAV cannot hold is left out and the record parked with the reason.
"""

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from shipnav_dagster.core.carriers import AgentChoice, CarrierMapping
from shipnav_dagster.core.model import NavOrder, NavPostedShipment, NavSalesLine, ShipRecord

Entity = Literal["SalesOrder", "PostedSalesShipment", "SalesLine"]
HEADER_STATUS_LOCKED = ("Shipping_Agent_Code", "Shipping_Agent_Service_Code", "Shipment_Date")


@dataclass(frozen=True)
class Skip:
    entity: Entity
    key: str
    field: str
    reason: str


@dataclass
class EntityPatch:
    """Changes for one NAV entity, applied in one PATCH with the ETag it was read with."""

    entity: Entity
    key: str  # SalesOrder No, PostedSalesShipment No, or "<order No>/<Line_No>"
    etag: str
    changes: dict[str, Any]
    before: dict[str, Any]


@dataclass
class OrderPlan:
    nav_order_no: str
    patches: list[EntityPatch] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    master_key: str | None = None
    master_tracking: str | None = None
    parked: dict[str, str] = field(default_factory=dict)  # record_key -> reason
    shipped_by_sku: dict[str, float] = field(default_factory=dict)

    @property
    def changes_count(self) -> int:
        return sum(len(p.changes) for p in self.patches)


def active_labels(records: Iterable[ShipRecord]) -> list[ShipRecord]:
    """Outbound, non-voided labels with a tracking number, earliest first (the master first)."""
    return sorted(
        (r for r in records if r.is_outbound_active),
        key=lambda r: (r.created_at, r.source != "shipment", r.source_id),
    )


def _tracking(record: ShipRecord) -> str:
    return (record.tracking_number or "").strip()


# Control, format (bidi overrides such as U+202E), surrogate, private-use and unassigned
# characters, and line/paragraph separators, have no place in a tracking number.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def tracking_problem(tracking: str, max_len: int) -> str | None:
    """Why NAV must not be given this tracking number (it is then parked, never altered)."""
    bad = sorted({f"U+{ord(ch):04X}" for ch in tracking if unicodedata.category(ch) in _UNPRINTABLE})
    if bad:
        return (
            f"tracking number {tracking.encode('unicode_escape').decode()!r} contains characters that "
            f"have no place in a tracking number ({', '.join(bad)}); not written"
        )
    if len(tracking) > max_len:
        return (
            f"tracking number {tracking!r} has {len(tracking)} characters but NAV's Package_Tracking_No "
            f"holds {max_len} (NAV_TRACKING_MAX_LENGTH); not written, never truncated"
        )
    return None


# Business Central's page 130 "Posted Sales Shipment" shows Shipping Agent, Agent Service and
# Package Tracking No. with Editable = false (its "Update Document" action edits them in page 1350
# through codeunit 391 "Shipment Header - Edit", which OData cannot drive); NAV 2013-2018's page 130
# has them editable and runs codeunit 391 on modify.
POSTED_READ_ONLY = (
    "Business Central makes the shipping fields of Posted Sales Shipments (page 130) read-only, so "
    'shipnav does not write them; an extension that publishes codeunit 391 "Shipment Header - Edit" '
    "as an API page would make them writable"
)


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def plan_order(
    order: NavOrder | None,
    records: Sequence[ShipRecord],
    mapping: CarrierMapping,
    *,
    tracking_max_length: int,
    posted: Sequence[NavPostedShipment] = (),
    lines: Sequence[NavSalesLine] | None = None,
    write_line_quantities: bool = False,
    agent_refused: str | None = None,
    posted_writable: bool = True,
    nav_order_no: str | None = None,
) -> OrderPlan:
    """The NAV values one order should have.

    ``order`` None: the sales order no longer exists (posting shipped and invoiced it, then
    deleted it); only its posted shipments, ``posted``, remain as the target.
    ``posted_writable`` False (Business Central): posted shipments are never patched; the header
    carries the label the next posting will copy onto the next posted shipment.
    ``agent_refused``: why NAV refused the mapped Shipping Agent code (the plan then writes
    tracking and dates only, and records the skip with this reason).
    """
    no = order.no if order is not None else str(nav_order_no)
    plan = OrderPlan(nav_order_no=no)
    labels = active_labels(records)
    voided_numbers = {_tracking(r) for r in records if r.voided and _tracking(r)}
    plan.shipped_by_sku = shipped_quantities(labels)
    if order is not None:
        header_label = labels[0] if labels else None
        if not posted_writable:
            header_label = _next_to_post(labels, posted)
        header_changes, header_before = _plan_header(
            plan, order, header_label, voided_numbers, mapping, tracking_max_length, agent_refused
        )
        if header_changes:
            plan.patches.append(EntityPatch("SalesOrder", no, order.etag, header_changes, header_before))
    _plan_posted(plan, posted, labels, voided_numbers, mapping, tracking_max_length, agent_refused)
    if not posted_writable:
        _keep_posted_as_they_are(plan, order is None, labels)
    if order is not None and write_line_quantities and lines is not None and any(r.items for r in labels):
        _plan_lines(plan, no, lines)
    return plan


def _next_to_post(labels: Sequence[ShipRecord], posted: Sequence[NavPostedShipment]) -> ShipRecord | None:
    """Business Central: the label the next posting will copy from the header onto the next posted
    shipment: the latest active label not yet on a posted shipment (the earliest, the master, when
    nothing is posted yet). None when every label is on a posted shipment already."""
    if not posted:
        return labels[0] if labels else None
    on_posted = {p.package_tracking_no.strip() for p in posted if p.package_tracking_no.strip()}
    waiting = [r for r in labels if _tracking(r) not in on_posted]
    return waiting[-1] if waiting else None


def _keep_posted_as_they_are(plan: OrderPlan, order_deleted: bool, labels: Sequence[ShipRecord]) -> None:
    """Posted shipments are read-only here: their planned changes become recorded skips, and when
    they were the only target (the order was deleted by posting) the labels are parked."""
    kept: list[EntityPatch] = []
    for patch in plan.patches:
        if patch.entity != "PostedSalesShipment":
            kept.append(patch)
            continue
        for name in patch.changes:
            plan.skips.append(Skip("PostedSalesShipment", patch.key, name, POSTED_READ_ONLY))
    plan.patches = kept
    if order_deleted:
        reason = (
            f"the sales order {plan.nav_order_no} was deleted by posting and only its posted shipments "
            f"remain: {POSTED_READ_ONLY}"
        )
        for label in labels:
            plan.parked.setdefault(label.record_key, reason)


def _plan_header(
    plan: OrderPlan,
    order: NavOrder,
    master: ShipRecord | None,
    voided_numbers: set[str],
    mapping: CarrierMapping,
    max_len: int,
    agent_refused: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    changes: dict[str, Any] = {}
    before: dict[str, Any] = {}
    _plan_tracking(
        plan,
        "SalesOrder",
        order.no,
        order.package_tracking_no,
        master,
        voided_numbers,
        max_len,
        changes,
        before,
    )
    if master is None:
        return changes, before
    plan.master_key = master.record_key
    plan.master_tracking = _tracking(master)
    if order.status != "Open":
        reason = (
            f"order is {order.status}: NAV accepts only Package_Tracking_No on it "
            "(Shipping Agent, Agent Service and Shipment Date need Status = Open)"
        )
        for name in HEADER_STATUS_LOCKED:
            plan.skips.append(Skip("SalesOrder", order.no, name, reason))
        return changes, before
    _plan_agent(
        plan,
        "SalesOrder",
        order.no,
        _choice(mapping, master, agent_refused),
        (order.shipping_agent_code, order.shipping_agent_service_code),
        changes,
        before,
    )
    if master.ship_date is not None and master.ship_date != order.shipment_date:
        changes["Shipment_Date"] = master.ship_date.isoformat()
        before["Shipment_Date"] = _iso(order.shipment_date)
    return changes, before


def _plan_tracking(
    plan: OrderPlan,
    entity: Entity,
    key: str,
    shown: str,
    label: ShipRecord | None,
    voided_numbers: set[str],
    max_len: int,
    changes: dict[str, Any],
    before: dict[str, Any],
) -> None:
    """Package_Tracking_No of one NAV record: the label's number, or cleared when the record still
    shows a voided label and no label is left for it. A number NAV cannot hold (too long for the
    field, control characters) is never cut to fit: the label is parked with the reason."""
    current = shown.strip()
    if label is None:
        if current and current in voided_numbers:
            changes["Package_Tracking_No"] = ""
            before["Package_Tracking_No"] = current
        return
    tracking = _tracking(label)
    problem = tracking_problem(tracking, max_len)
    if problem:
        plan.parked.setdefault(label.record_key, problem)
        plan.skips.append(Skip(entity, key, "Package_Tracking_No", problem))
    elif current != tracking:
        changes["Package_Tracking_No"] = tracking
        before["Package_Tracking_No"] = current


def _choice(mapping: CarrierMapping, label: ShipRecord, agent_refused: str | None) -> AgentChoice:
    if agent_refused:
        return AgentChoice(None, None, agent_refused, "no shipping agent")
    return mapping.choose(label.carrier_code, label.service_code)


def _plan_agent(
    plan: OrderPlan,
    entity: Entity,
    key: str,
    choice: AgentChoice,
    current: tuple[str, str],
    changes: dict[str, Any],
    before: dict[str, Any],
) -> None:
    """Shipping agent and service of one entity (header or posted shipment), the same rule for both:
    a code that is unmapped (or that NAV refused) is left as it is and the skip is recorded."""
    agent, service = current
    agent_changes = choice.agent is not None and choice.agent != agent
    if choice.agent is None:
        plan.skips.append(Skip(entity, key, "Shipping_Agent_Code", str(choice.agent_reason)))
    elif agent_changes:
        changes["Shipping_Agent_Code"] = choice.agent
        before["Shipping_Agent_Code"] = agent
    if choice.service is None:
        plan.skips.append(Skip(entity, key, "Shipping_Agent_Service_Code", str(choice.service_reason)))
    elif agent_changes or choice.service != service:
        # NAV's Shipping Agent Code trigger clears the service, so it is re-sent with the agent.
        changes["Shipping_Agent_Service_Code"] = choice.service
        before["Shipping_Agent_Service_Code"] = service


def _pair_posted(posted: Sequence[NavPostedShipment], labels: Sequence[ShipRecord]) -> dict[str, ShipRecord]:
    """Each posted shipment keeps the label it already carries; the rest take the remaining
    labels in posting order (NAV copies the header's tracking onto each posted shipment)."""
    by_tracking = {_tracking(r): r for r in labels}
    ordered = sorted(posted, key=lambda p: (p.posting_date or date.min, p.no))
    pairs: dict[str, ShipRecord] = {}
    for p in ordered:
        label = by_tracking.get(p.package_tracking_no.strip())
        if label is not None and label not in pairs.values():
            pairs[p.no] = label
    remaining = [r for r in labels if r not in pairs.values()]
    for p in ordered:
        if p.no not in pairs and remaining:
            pairs[p.no] = remaining.pop(0)
    return pairs


def _plan_posted(
    plan: OrderPlan,
    posted: Sequence[NavPostedShipment],
    labels: Sequence[ShipRecord],
    voided_numbers: set[str],
    mapping: CarrierMapping,
    max_len: int,
    agent_refused: str | None,
) -> None:
    pairs = _pair_posted(posted, labels)
    for p in posted:
        label = pairs.get(p.no)
        changes: dict[str, Any] = {}
        before: dict[str, Any] = {}
        _plan_tracking(
            plan,
            "PostedSalesShipment",
            p.no,
            p.package_tracking_no,
            label,
            voided_numbers,
            max_len,
            changes,
            before,
        )
        if label is not None:
            _plan_agent(
                plan,
                "PostedSalesShipment",
                p.no,
                _choice(mapping, label, agent_refused),
                (p.shipping_agent_code, p.shipping_agent_service_code),
                changes,
                before,
            )
        if changes:
            plan.patches.append(EntityPatch("PostedSalesShipment", p.no, p.etag, changes, before))


def shipped_quantities(labels: Iterable[ShipRecord]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for label in labels:
        for item in label.items:
            sku = item.sku.strip().upper()
            if sku:
                totals[sku] = totals.get(sku, 0) + item.quantity
    return totals


def _plan_lines(plan: OrderPlan, order_no: str, lines: Sequence[NavSalesLine]) -> None:
    """Qty_to_Ship = what ShipStation shipped that NAV has not posted yet, never above outstanding."""
    item_lines = sorted((ln for ln in lines if ln.type == "Item" and ln.no), key=lambda ln: ln.line_no)
    posted_by_sku: dict[str, float] = {}
    for ln in item_lines:
        posted_by_sku[ln.no.upper()] = posted_by_sku.get(ln.no.upper(), 0) + ln.quantity_shipped
    to_allocate = {sku: max(qty - posted_by_sku.get(sku, 0), 0) for sku, qty in plan.shipped_by_sku.items()}
    for ln in item_lines:
        sku = ln.no.upper()
        want = min(to_allocate.get(sku, 0), ln.outstanding)
        if sku in to_allocate:
            to_allocate[sku] -= want
        if want != ln.qty_to_ship:
            plan.patches.append(
                EntityPatch(
                    "SalesLine",
                    f"{order_no}/{ln.line_no}",
                    ln.etag,
                    {"Qty_to_Ship": want},
                    {"Qty_to_Ship": ln.qty_to_ship},
                )
            )
