"""A generated, deterministic shop: what ShipStation and NAV look like after a busy week.

``build_world`` plans every order first (store, customer, fate in ShipStation, how NAV knows it),
then replays the plan as a timeline of ``scenario`` calls sorted by time, so ids grow with time
the way they do in the real systems. ``SeedManifest`` records which orders were built for which
case, so tests, the demo and the README can name them instead of rediscovering them.

Everything derives from ``random.Random(seed)`` and ``now``: the same pair gives the same world.
"""

import heapq
import itertools
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.state import NAV2018, PACIFIC, SandboxWorld, format_pacific, pacific_now

# ShipStation fates of an order (what happened to it in ShipStation this week).
LABEL = "label_single"
MULTI = "multi_package"
VOID_RELABEL = "void_relabel"
VOID_ONLY = "void_only"
RETURN = "return_label"
SPLIT = "split"
UNMAPPED = "unmapped_carrier"
OVERLONG = "overlong_tracking"
FULFILLMENT = "fulfillment"
UNSHIPPED_STATUSES = ("awaiting_shipment", "awaiting_payment", "on_hold", "cancelled")
SHIPPED_FATES = (LABEL, MULTI, VOID_RELABEL, RETURN, SPLIT, UNMAPPED, OVERLONG, FULFILLMENT)

# How NAV knows an order (which matching tier can find it).
NAV_EXT = "nav_by_external_document_no"
NAV_KEY = "nav_by_order_key"
NAV_NO = "nav_by_no"
NAV_NAME = "nav_by_name_date"
NAV_AMBIGUOUS_EXT = "nav_ambiguous_external"
NAV_AMBIGUOUS_NAME = "nav_ambiguous_name"
NAV_MISSING = "nav_missing"

# Per 300 orders; scaled linearly (at least 1 each) for other sizes.
_FATE_QUOTA = {
    MULTI: 12,
    VOID_RELABEL: 8,
    VOID_ONLY: 3,
    RETURN: 5,
    SPLIT: 6,
    UNMAPPED: 4,
    OVERLONG: 4,
    FULFILLMENT: 8,
    "awaiting_shipment": 45,
    "awaiting_payment": 6,
    "on_hold": 4,
    "cancelled": 5,
}
_NAV_QUOTA = {NAV_KEY: 10, NAV_NO: 15, NAV_AMBIGUOUS_EXT: 3, NAV_MISSING: 12}
_RECENT_LABELS = 10  # labels bought in the last two hours (a short first poll still finds some)

# Customers whose names test normalisation and OData quoting: (ShipStation name, company, NAV name).
SPECIAL_CUSTOMERS: tuple[tuple[str, str | None, str], ...] = (
    ("O'Brien & Sons", "O'Brien & Sons", "O'Brien & Sons"),
    ("Marco D'Angelo", None, "Marco D'Angelo"),
    ("Zoë Müller", None, "Zoë Müller"),
    ("José Peña", None, "JOSÉ PEÑA"),
    ("ACME INC", "ACME INC", "Acme, Inc."),
    ("  Mary   Ellen Carter ", None, "Mary Ellen Carter"),
    ("li wei", None, "Li Wei"),
    ("Renée O'Connor-Smith", None, "Renée O'Connor-Smith"),
)
_SPECIAL_NAMES = frozenset(c[0] for c in SPECIAL_CUSTOMERS)
# Name-only matches beyond the special ones: names used nowhere else, so tier 3 is unambiguous.
_UNIQUE_NAMES = ("Harriet Vane", "Peter Wimsey", "Ariadne Oliver", "Tuppence Beresford", "Albert Campion")
_FIRST = (
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Mateo", "Sofia", "Ethan", "Chloé", "Lucas", "Mia",
    "Aiden", "Grace", "Seán", "Priya", "Kenji", "Fatima", "Björn", "Nora", "Diego",
)  # fmt: skip
_LAST = (
    "Johnson", "Garcia", "Nguyen", "Patel", "Kowalski", "O'Neill", "Dubois", "Okafor", "Larsen",
    "Rossi", "Schmidt", "Tanaka", "Hernández", "Brown", "Cohen", "Murphy", "Silva", "Kim",
)  # fmt: skip
_SKUS = sorted(sc.CATALOG)
_COMPANIES = ("Blue Ridge Outfitters LLC", "Northwind Traders", "Hwang & Daughters Co.", "Fabrikam, Inc.")
_INTERNATIONAL = (
    ("Toronto", "ON", "M5V 2T6", "CA"),
    ("London", "", "EC1A 1BB", "GB"),
    ("Berlin", "", "10115", "DE"),
)
_CARRIERS = (("ups", 40), ("fedex", 20), ("stamps_com", 20), ("usps", 10), ("dhl_express", 10))
_SERVICES = {
    "ups": (("ups_ground", 70), ("ups_next_day_air", 15), ("ups_2nd_day_air", 15)),
    "fedex": (("fedex_ground", 60), ("fedex_2day", 25), ("fedex_priority_overnight", 15)),
    "stamps_com": (("usps_priority_mail", 60), ("usps_first_class_mail", 40)),
    "usps": (("usps_priority_mail", 70), ("usps_first_class_mail", 30)),
    "dhl_express": (("dhl_express_worldwide", 100),),
    "ontrac": (("ontrac_ground", 100),),
}
# Mark-as-shipped carriers as sellers type them: (free text, carrier whose number format to use).
_FULFILLMENT_CARRIERS = (
    ("FedEx", "fedex"),
    ("UPS", "ups"),
    ("USPS", "usps"),
    ("Royal Mail", "royal_mail"),
    ("FedEx", "fedex"),
    ("UPS", "ups"),
    ("USPS", "usps"),
    ("DHL", "dhl_express"),
)


@dataclass
class SeedManifest:
    """Which ShipStation order numbers (or NAV numbers, for NAV-only rows) exemplify which case."""

    seed: int
    now: datetime
    categories: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, category: str, ref: str) -> None:
        self.categories[category].append(ref)

    def counts(self) -> dict[str, int]:
        return {name: len(refs) for name, refs in sorted(self.categories.items())}


@dataclass(eq=False)  # identity semantics: list.remove() must remove this very plan
class _Plan:
    """One customer order as the generator intends it, before any record exists."""

    store: str
    placed: datetime
    fate: str
    nav_mode: str = NAV_EXT
    customer: str = ""
    company: str | None = None
    nav_name: str | None = None
    items: list[sc.ItemSpec] = field(default_factory=list)
    adjustments: list[tuple[str, float]] = field(default_factory=list)
    carrier: str = "ups"
    service: str = "ups_ground"
    released: bool = False
    post_partial: bool = False
    recent: bool = False
    ship_to: dict | None = None
    number: str = ""
    order_key: str | None = None
    fulfillment_carrier: tuple[str, str] = ("FedEx", "fedex")
    typed_tracking: bool = False
    # A split Amazon order whose split-off child was keyed into NAV as its own order.
    child_in_nav: bool = False


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def build_world(
    seed: int = 7,
    orders: int = 300,
    now: datetime | None = None,
    tracking_max_length: int | None = None,
    platform: str = NAV2018,
) -> SandboxWorld:
    """A fresh world holding the generated shop (see ``seed_shop``)."""
    return build_world_with_manifest(seed, orders, now, tracking_max_length, platform)[0]


def build_world_with_manifest(
    seed: int = 7,
    orders: int = 300,
    now: datetime | None = None,
    tracking_max_length: int | None = None,
    platform: str = NAV2018,
) -> tuple[SandboxWorld, SeedManifest]:
    """The generated shop and its manifest. ``platform`` is ``"nav2018"`` or ``"bc"`` (Business
    Central); ``tracking_max_length`` defaults to the platform's (30 on NAV 2018, 50 on BC 27+)."""
    world = SandboxWorld.for_platform(platform)
    if tracking_max_length is not None:
        world.nav.tracking_max_length = tracking_max_length
    manifest = seed_shop(world, seed=seed, orders=orders, now=now)
    return world, manifest


def seed_shop(
    world: SandboxWorld, *, seed: int = 7, orders: int = 300, now: datetime | None = None
) -> SeedManifest:
    """Fill ``world`` with ``orders`` customer orders placed over the ~6 days before ``now``.

    ``now`` is naive Pacific (an aware datetime is converted); the default is the current time.
    """
    at = _pacific(now)
    rng = random.Random(seed)
    ctx = _Ctx(world, rng, at, SeedManifest(seed=seed, now=at), _add_stores(world, at))
    sc.install_shipping_agents(world)
    for plan in _plan_orders(rng, orders, at):
        _schedule_order(ctx, plan)
    _schedule_nav_only(ctx, max(1, orders // 20))
    ctx.timeline.run()
    _record_recent_labels(ctx)
    return ctx.manifest


def build_bulk_world(
    n_shipments: int, seed: int = 7, now: datetime | None = None, waiting: float = 0.0
) -> SandboxWorld:
    """A benchmark world: ``n_shipments`` labels on orders of 1–2 labels, each order in NAV.

    Every order has exactly one NAV order with ``External_Document_No`` = its ``orderNumber``, so
    every shipment matches at tier 1. Addresses come from a small shared pool to keep memory low.
    ``waiting``: the share of orders NAV does not have yet (their labels wait, and every sync asks
    NAV about them again).
    """
    at = _pacific(now)
    rng = random.Random(seed)
    world = SandboxWorld()
    sc.install_shipping_agents(world)
    store = sc.add_store(world, created=at - timedelta(days=400))["storeId"]
    pool = [sc.make_address(f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", key=f"bulk{i}") for i in range(64)]
    span = timedelta(days=6).total_seconds()
    remaining = n_shipments
    number = 200_000
    while remaining > 0:
        labels = 2 if remaining >= 2 and rng.random() < 0.2 else 1
        number += 1
        placed = at - timedelta(seconds=span * (remaining / n_shipments)) - timedelta(minutes=30)
        address = pool[number % len(pool)]
        order, _nav = sc.add_customer_order(
            world,
            order_number=str(number),
            customer_name=address["name"],
            order_date=placed,
            items=[(rng.choice(_SKUS), 1)],
            store_id=store,
            ship_to=address,
            bill_to=address,
            in_nav=rng.random() >= waiting,
        )
        carrier = _weighted(rng, _CARRIERS[:3])
        for k in range(labels):
            sc.buy_label(
                world,
                order["orderId"],
                carrier_code=carrier,
                created=placed + timedelta(minutes=10 + 3 * k),
            )
        remaining -= labels
    return world


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def _pacific(now: datetime | None) -> datetime:
    if now is None:
        return pacific_now()
    if now.tzinfo is not None:
        return now.astimezone(PACIFIC).replace(tzinfo=None)
    return now


def _scaled(quota: dict[str, int], orders: int) -> dict[str, int]:
    return {name: max(1, round(count * orders / 300)) for name, count in quota.items()}


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    names = [c for c, _w in choices]
    weights = [w for _c, w in choices]
    return rng.choices(names, weights=weights)[0]


def _plan_orders(rng: random.Random, orders: int, now: datetime) -> list[_Plan]:
    fates = _fates(rng, orders)
    plans = [_Plan(store=_pick_store(rng), placed=now, fate=fate) for fate in fates]
    _assign_nav_modes(rng, plans, orders)
    for plan in plans:
        _fill_plan(rng, plan, now)
    _plan_recent(rng, plans, now)
    _plan_duplicate_names(plans, now)
    _unique_customer_days(rng, plans)
    plans.sort(key=lambda p: p.placed)
    _number_orders(rng, plans)
    return plans


def _fates(rng: random.Random, orders: int) -> list[str]:
    quota = _scaled(_FATE_QUOTA, orders)
    fates = [fate for fate, count in quota.items() for _ in range(count)]
    fates = fates[:orders] + [LABEL] * max(0, orders - len(fates))
    rng.shuffle(fates)
    return fates


def _pick_store(rng: random.Random) -> str:
    return _weighted(rng, (("manual", 45), ("shopify", 35), ("amazon", 20)))


def _take(rng: random.Random, pool: list[_Plan], count: int) -> list[_Plan]:
    chosen = rng.sample(pool, min(count, len(pool)))
    for plan in chosen:
        pool.remove(plan)
    return chosen


def _assign_nav_modes(rng: random.Random, plans: list[_Plan], orders: int) -> None:
    """Decide how NAV knows each order. Interesting modes go to shipped orders only."""
    quota = _scaled(_NAV_QUOTA, orders)
    shipped = [p for p in plans if p.fate in SHIPPED_FATES and p.fate != SPLIT]
    for plan in _take(rng, shipped, quota[NAV_MISSING]):
        plan.nav_mode = NAV_MISSING
    for plan in _take(rng, shipped, len(SPECIAL_CUSTOMERS) + len(_UNIQUE_NAMES)):
        plan.nav_mode = NAV_NAME
    for plan in _take(rng, shipped, quota[NAV_AMBIGUOUS_EXT]):
        plan.nav_mode = NAV_AMBIGUOUS_EXT
    for plan in _take(rng, shipped, quota[NAV_NO]):
        plan.nav_mode, plan.store = NAV_NO, "manual"  # only numeric manual numbers can be a NAV No.
    shopify = [p for p in shipped if p.store == "shopify"]
    for plan in _take(rng, shopify, quota[NAV_KEY]):
        plan.nav_mode = NAV_KEY
    splits = [p for p in plans if p.fate == SPLIT]
    for n, plan in enumerate(splits):
        # Split children are "<parent>-1": a third of them let tier 2 strip the suffix. Another
        # third are Amazon orders: "113-1234567-1234567-1" is 21 characters, too long for NAV's
        # No (Code[20]) but not for External_Document_No (Code[35]), under which the seller keyed
        # the split-off box into NAV as an order of its own.
        plan.store = "amazon" if n % 3 == 1 else "manual"
        plan.nav_mode = NAV_NO if n % 3 == 0 else NAV_EXT
        plan.child_in_nav = n % 3 == 1
    names = [*SPECIAL_CUSTOMERS, *((name, None, name) for name in _UNIQUE_NAMES)]
    for plan, (ss_name, company, nav_name) in zip(
        (p for p in plans if p.nav_mode == NAV_NAME), names, strict=False
    ):
        plan.customer, plan.company, plan.nav_name = ss_name, company, nav_name
    in_nav = [p for p in plans if p.nav_mode != NAV_MISSING]
    for plan in rng.sample(in_nav, min(len(in_nav), max(1, len(in_nav) // 10))):
        plan.released = True
    partial = [p for p in plans if p.fate == MULTI and p.nav_mode == NAV_EXT and not p.released]
    for n, plan in enumerate(rng.sample(partial, min(4, len(partial)))):
        plan.post_partial = True
        plan.typed_tracking = n == 0
    fulfilled = [p for p in plans if p.fate == FULFILLMENT]
    for n, plan in enumerate(fulfilled):
        plan.fulfillment_carrier = _FULFILLMENT_CARRIERS[n % len(_FULFILLMENT_CARRIERS)]


def _fill_plan(rng: random.Random, plan: _Plan, now: datetime) -> None:
    shipped = plan.fate in SHIPPED_FATES or plan.fate == VOID_ONLY
    earliest = timedelta(hours=3) if shipped else timedelta(minutes=10)
    plan.placed = now - earliest - timedelta(seconds=rng.uniform(0, 6 * 86400 - earliest.total_seconds()))
    plan.placed = plan.placed.replace(microsecond=rng.randrange(100) * 10_000)
    if not plan.customer:
        if rng.random() < 0.08:
            plan.company = rng.choice(_COMPANIES)
            plan.customer = plan.company
        else:
            plan.customer = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    n_items = 2 + rng.randrange(2) if plan.fate in (MULTI, SPLIT) else 1 + int(rng.random() < 0.3)
    skus = rng.sample(_SKUS, n_items)
    plan.items = [(sku, 1 + int(rng.random() < 0.2)) for sku in skus]
    if plan.store == "shopify" and rng.random() < 0.15:
        plan.adjustments = [("Discount: WELCOME10", 5.0)]
    plan.carrier = {UNMAPPED: "ontrac", OVERLONG: "fedex"}.get(plan.fate) or _weighted(rng, _CARRIERS)
    plan.service = _weighted(rng, _SERVICES[plan.carrier])
    if plan.fate == OVERLONG:
        plan.service = "fedex_ground_economy"  # SmartPost-style 34-digit numbers
    if plan.carrier == "dhl_express":
        city, state, postal, country = rng.choice(_INTERNATIONAL)
        plan.ship_to = sc.make_address(
            plan.customer, company=plan.company, city=city, state=state, postal_code=postal, country=country
        )


def _plan_recent(rng: random.Random, plans: list[_Plan], now: datetime) -> None:
    """Some orders are placed today and labelled within the last two hours."""
    candidates = [p for p in plans if p.fate in (LABEL, MULTI, VOID_RELABEL)]
    for plan in rng.sample(candidates, min(_RECENT_LABELS, len(candidates))):
        plan.recent = True
        plan.placed = now - timedelta(minutes=rng.uniform(150, 600))


def _plan_duplicate_names(plans: list[_Plan], now: datetime) -> None:
    """Two different John Smiths order on the same day, both known to NAV by name and date only."""
    pair = [p for p in plans if p.fate == LABEL and p.nav_mode == NAV_EXT and not p.recent][:2]
    if len(pair) < 2:
        return
    day = (now - timedelta(days=2)).replace(hour=9, minute=12, second=5, microsecond=0)
    for offset, plan in enumerate(pair):
        plan.nav_mode = NAV_AMBIGUOUS_NAME
        plan.customer = plan.nav_name = "John Smith"
        plan.company = None
        plan.placed = day + timedelta(hours=3 * offset)
        plan.ship_to = sc.make_address("John Smith", key=f"john-smith-{offset}")


def _name_key(name: str) -> str:
    """Roughly what a tier-3 matcher compares: case, accents, punctuation, spacing ignored."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _unique_customer_days(rng: random.Random, plans: list[_Plan]) -> None:
    """No customer orders twice on one day, except the deliberate John Smith pair.

    A repeat customer on the same day would make a "missing from NAV" order matchable by name
    and date to the other order's NAV record, blurring the categories the manifest promises.
    """
    reserved = (NAV_NAME, NAV_AMBIGUOUS_NAME)
    ordered = [p for p in plans if p.nav_mode in reserved] + [p for p in plans if p.nav_mode not in reserved]
    seen: set[tuple[str, date]] = set()
    for plan in ordered:
        key = (_name_key(plan.customer), plan.placed.date())
        if plan.nav_mode == NAV_AMBIGUOUS_NAME:
            seen.add(key)
            continue
        tries = 0
        while key in seen:
            plan.customer, plan.company = _another_name(rng, tries), None
            key = (_name_key(plan.customer), plan.placed.date())
            tries += 1
        if plan.ship_to is not None:
            plan.ship_to = dict(plan.ship_to, name=plan.customer, company=plan.company)
        seen.add(key)


def _another_name(rng: random.Random, tries: int) -> str:
    """A random customer name; middle initials (then a suffix) once plain names run out."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    if tries < 20:
        return f"{first} {last}"
    middle = chr(ord("A") + rng.randrange(26))
    return f"{first} {middle}. {last}" if tries < 200 else f"{first} {middle}. {last} {tries}"


def _number_orders(rng: random.Random, plans: list[_Plan]) -> None:
    """Order numbers grow with time within each store, in each channel's own style."""
    counters = {"manual": itertools.count(100_001), "shopify": itertools.count(1001)}
    for plan in plans:
        if plan.store == "manual":
            plan.number = str(next(counters["manual"]))
            # ShipStation keys manual orders by a GUID: as 36 characters with dashes (one more than
            # NAV's External Document No. holds) or as 32 hex digits.
            key = sc.guid_for(f"manual:{plan.number}")
            plan.order_key = key if int(plan.number) % 2 else key.replace("-", "")
        elif plan.store == "shopify":
            plan.number = f"#{next(counters['shopify'])}"
            plan.order_key = str(5_500_000_000_000 + rng.randrange(10**11))
        else:
            plan.number = f"11{rng.randrange(10)}-{rng.randrange(10**7):07d}-{rng.randrange(10**7):07d}"
            plan.order_key = plan.number


# --------------------------------------------------------------------------------------------
# The timeline: scenario calls in time order
# --------------------------------------------------------------------------------------------


class _Timeline:
    """Callbacks ordered by time (ties by insertion order), so ids grow with time."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, Callable[[], object]]] = []
        self._seq = itertools.count()

    def at(self, when: datetime, action: Callable[[], object]) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), action))

    def run(self) -> None:
        while self._heap:
            _when, _seq, action = heapq.heappop(self._heap)
            action()


@dataclass
class _Ctx:
    """What every scheduling step needs; keeps the step signatures short."""

    world: SandboxWorld
    rng: random.Random
    now: datetime
    manifest: SeedManifest
    stores: dict[str, int]
    timeline: _Timeline = field(default_factory=_Timeline)

    @property
    def latest(self) -> datetime:
        return self.now - timedelta(minutes=1)


@dataclass
class _Live:
    """Records one planned order produced so far (filled in as the timeline runs)."""

    order: dict = field(default_factory=dict)
    nav: dict | None = None
    child: dict = field(default_factory=dict)
    labels: list[dict] = field(default_factory=list)


def _add_stores(world: SandboxWorld, now: datetime) -> dict[str, int]:
    opened = now - timedelta(days=420)
    manual = sc.add_store(world, created=opened)
    shopify = sc.add_store(
        world, store_name="Coastline Goods", marketplace_name="Shopify", marketplace_id=26, created=opened
    )
    amazon = sc.add_store(
        world,
        store_name="Coastline Goods Amazon US",
        marketplace_name="Amazon",
        marketplace_id=2,
        created=opened,
    )
    return {"manual": manual["storeId"], "shopify": shopify["storeId"], "amazon": amazon["storeId"]}


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(seconds=rng.uniform(low * 60, high * 60))


def _schedule_order(ctx: _Ctx, plan: _Plan) -> None:
    created = min(plan.placed + _minutes(ctx.rng, 1, 12), ctx.now - timedelta(minutes=5))
    live = _Live()

    def create() -> None:
        live.order, live.nav = _create_order(ctx, plan, created)
        _record_order(ctx.manifest, plan, live.order)

    ctx.timeline.at(created, create)
    first = _first_label_time(ctx, plan, created)
    if plan.fate == FULFILLMENT:
        ctx.timeline.at(first, lambda: _fulfil(ctx, plan, live, first))
    elif plan.fate in SHIPPED_FATES or plan.fate == VOID_ONLY:
        _schedule_labels(ctx, plan, live, first)
    # Unshipped orders only need their status, which is set at creation.


def _first_label_time(ctx: _Ctx, plan: _Plan, created: datetime) -> datetime:
    if plan.recent:
        return ctx.now - _minutes(ctx.rng, 2, 110)
    room = (ctx.now - created).total_seconds() / 3600
    return created + timedelta(hours=ctx.rng.uniform(0.3, max(0.31, min(30.0, room * 0.5))))


def _create_order(ctx: _Ctx, plan: _Plan, created: datetime) -> tuple[dict, dict | None]:
    status = plan.fate if plan.fate in UNSHIPPED_STATUSES else "awaiting_shipment"
    nav_kwargs: dict = {"nav_status": "Released" if plan.released else "Open"}
    if plan.nav_mode == NAV_MISSING:
        nav_kwargs["in_nav"] = False
    elif plan.nav_mode == NAV_KEY:
        nav_kwargs["external_document_no"] = plan.order_key
    elif plan.nav_mode == NAV_NO:
        nav_kwargs.update(nav_no=plan.number, external_document_no="")
    elif plan.nav_mode in (NAV_NAME, NAV_AMBIGUOUS_NAME):
        nav_kwargs.update(external_document_no="", nav_customer_name=plan.nav_name)
    order, nav = sc.add_customer_order(
        ctx.world,
        order_number=plan.number,
        customer_name=plan.customer,
        company=plan.company,
        order_date=plan.placed,
        created=created,
        items=plan.items,
        adjustments=plan.adjustments,
        store_id=ctx.stores[plan.store],
        order_status=status,
        order_key=plan.order_key,
        ship_to=plan.ship_to,
        line_item_keys=plan.store == "shopify",
        **nav_kwargs,
    )
    if plan.nav_mode == NAV_AMBIGUOUS_EXT and nav is not None:
        # The same web order keyed into NAV twice (a duplicate import): two candidates at tier 1.
        sc.add_nav_order(
            ctx.world,
            customer_name=nav["Sell_to_Customer_Name"],
            order_date=date.fromisoformat(nav["Order_Date"]),
            external_document_no=nav["External_Document_No"],
            lines=plan.items,
        )
    return order, nav


# NAV field lengths a ShipStation identifier may not fit: No is Code[20], External Document No.
# Code[35]. A filter literal longer than its field fails the whole NAV request.
NAV_NO_LENGTH = 20
NAV_EXTERNAL_DOCUMENT_NO_LENGTH = 35


def _record_lengths(manifest: SeedManifest, order: dict) -> None:
    number = order["orderNumber"]
    if len(number) > NAV_NO_LENGTH:
        manifest.add("order_number_over_no_length", number)
    if len(order["orderKey"]) > NAV_EXTERNAL_DOCUMENT_NO_LENGTH:
        manifest.add("order_key_over_external_length", number)


def _record_order(manifest: SeedManifest, plan: _Plan, order: dict) -> None:
    number = order["orderNumber"]
    _record_lengths(manifest, order)
    manifest.add("unshipped" if plan.fate in UNSHIPPED_STATUSES else plan.fate, number)
    manifest.add(plan.nav_mode, number)
    if plan.released and plan.nav_mode != NAV_MISSING:
        manifest.add("nav_released", number)
    if plan.adjustments:
        manifest.add("adjustment_lines", number)
    if plan.customer in _SPECIAL_NAMES:
        manifest.add("special_names", number)
    if order["shipTo"]["country"] != "US":
        manifest.add("international", number)


def _fulfil(ctx: _Ctx, plan: _Plan, live: _Live, when: datetime) -> None:
    text, code = plan.fulfillment_carrier
    serial = 500_000_000 + ctx.rng.randrange(10**8)
    tracking = f"RM{serial:09d}GB" if code == "royal_mail" else sc.tracking_number_for(code, serial)
    # Sellers often mark an order shipped the day after it went out.
    shipped_on = (when - timedelta(days=ctx.rng.choice((0, 0, 1)))).date()
    sc.mark_shipped(
        ctx.world,
        live.order["orderId"],
        carrier=text,
        tracking_number=tracking,
        ship_date=shipped_on,
        created=when,
    )


def _buy(ctx: _Ctx, plan: _Plan, live: _Live, order_id: int, when: datetime, **kwargs: object) -> None:
    label = sc.buy_label(
        ctx.world,
        order_id,
        carrier_code=plan.carrier,
        service_code=plan.service,
        created=when,
        **kwargs,  # type: ignore[arg-type]
    )
    live.labels.append(label)


def _schedule_labels(ctx: _Ctx, plan: _Plan, live: _Live, first: datetime) -> None:
    at, rng = ctx.timeline.at, ctx.rng

    def buy(when: datetime, **kwargs: object) -> Callable[[], None]:
        return lambda: _buy(ctx, plan, live, live.order["orderId"], when, **kwargs)

    if plan.fate == MULTI:
        _schedule_packages(ctx, plan, live, first)
    elif plan.fate in (VOID_RELABEL, VOID_ONLY):
        void_at = min(first + _minutes(rng, 5, 90), ctx.latest)
        at(first, buy(first))
        at(void_at, lambda: sc.void_label(ctx.world, live.labels[0]["shipmentId"], void_at))
        if plan.fate == VOID_RELABEL:
            again = min(void_at + _minutes(rng, 1, 20), ctx.latest)
            at(again, buy(again))
    elif plan.fate == RETURN:
        back = min(first + timedelta(hours=rng.uniform(2, 48)), ctx.latest)
        at(first, buy(first))
        at(back, buy(back, is_return=True))
    elif plan.fate == SPLIT:
        _schedule_split(ctx, plan, live, first)
    else:
        at(first, buy(first))


def _schedule_packages(ctx: _Ctx, plan: _Plan, live: _Live, first: datetime) -> None:
    """One order, 2–3 boxes: one label per box, minutes apart, items divided between them."""
    packages = min(len(plan.items), 2 + int(ctx.rng.random() < 0.35))

    def box(when: datetime, group: list[sc.ItemSpec]) -> Callable[[], None]:
        return lambda: _buy(ctx, plan, live, live.order["orderId"], when, items=group)

    for k in range(packages):
        when = min(first + timedelta(minutes=4 * k) + _minutes(ctx.rng, 0, 3), ctx.latest)
        ctx.timeline.at(when, box(when, plan.items[k::packages]))
    if plan.post_partial:
        ctx.timeline.at(
            min(first + timedelta(minutes=20), ctx.latest), lambda: _post_partial(ctx, plan, live)
        )


def _schedule_split(ctx: _Ctx, plan: _Plan, live: _Live, first: datetime) -> None:
    """Split Ship: the last item moves to ``<number>-1``; parent and child get their own labels."""
    split_at = first - _minutes(ctx.rng, 1, 10)
    child_at = min(first + timedelta(hours=ctx.rng.uniform(0.1, 20)), ctx.latest)

    def split() -> None:
        live.child = sc.split_order(ctx.world, live.order["orderId"], [plan.items[-1]], when=split_at)
        ctx.manifest.add("split_child", live.child["orderNumber"])
        _record_lengths(ctx.manifest, live.child)
        if plan.child_in_nav and live.nav is not None:
            _child_into_nav(ctx, live)

    ctx.timeline.at(split_at, split)
    ctx.timeline.at(first, lambda: _buy(ctx, plan, live, live.order["orderId"], first))
    ctx.timeline.at(child_at, lambda: _buy(ctx, plan, live, live.child["orderId"], child_at))


def _child_into_nav(ctx: _Ctx, live: _Live) -> None:
    """The split-off box keyed into NAV as its own order, External_Document_No = the child's number."""
    assert live.nav is not None
    child = live.child
    sc.add_nav_order(
        ctx.world,
        customer_name=live.nav["Sell_to_Customer_Name"],
        order_date=date.fromisoformat(live.nav["Order_Date"]),
        external_document_no=child["orderNumber"],
        lines=[(item["sku"], item["quantity"]) for item in child["items"]],
        address=child["shipTo"],
    )
    ctx.manifest.add(NAV_EXT, child["orderNumber"])
    ctx.manifest.add("marketplace_split_child", child["orderNumber"])


def _post_partial(ctx: _Ctx, plan: _Plan, live: _Live) -> None:
    """The warehouse posted the first box's items in NAV before any write-back happened.

    On ``plan.typed_tracking`` orders a user had already typed the first tracking number on the
    order, so that posted shipment carries it (posting copies the header).
    """
    if live.nav is None:
        return
    first = live.labels[0]
    if plan.typed_tracking:
        sc.update_nav_order(ctx.world, live.nav["No"], Package_Tracking_No=first["trackingNumber"])
    shipped = {item["sku"]: item["quantity"] for item in first["shipmentItems"]}
    posted = sc.post_nav_shipment(
        ctx.world, live.nav["No"], quantities=shipped, posting_date=date.fromisoformat(first["shipDate"])
    )
    ctx.manifest.add("nav_posted_partial", plan.number)
    if posted["Package_Tracking_No"]:
        ctx.manifest.add("nav_posted_with_tracking", plan.number)


def _schedule_nav_only(ctx: _Ctx, count: int) -> None:
    """Phone and EDI orders that live only in NAV (noise the index must not trip over)."""
    for n in range(count):
        when = ctx.now - timedelta(hours=ctx.rng.uniform(1, 140))
        name = f"{ctx.rng.choice(_FIRST)} {ctx.rng.choice(_LAST)}"
        ext = f"PO-{4400 + n}" if ctx.rng.random() < 0.6 else ""
        items = [(ctx.rng.choice(_SKUS), 1 + ctx.rng.randrange(4))]

        def add(when: datetime = when, name: str = name, ext: str = ext, items: list = items) -> None:
            nav = sc.add_nav_order(
                ctx.world, customer_name=name, order_date=when.date(), external_document_no=ext, lines=items
            )
            ctx.manifest.add("nav_only", nav["No"])

        ctx.timeline.at(when, add)


def _record_recent_labels(ctx: _Ctx) -> None:
    cutoff = format_pacific(ctx.now - timedelta(hours=2))
    for shipment in ctx.world.shipstation.shipments.values():
        if shipment["createDate"] >= cutoff:
            ctx.manifest.add("recent_label", str(shipment["shipmentId"]))
