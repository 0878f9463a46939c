"""In-memory state of the two emulated systems, shared by the sandbox apps, the seed and tests.

Records are kept in the shape the real APIs return them (ShipStation JSON with naive Pacific
timestamps; NAV page fields with OData names), so the apps serve them almost verbatim and tests
can assert on exactly what a client sees.
"""

import base64
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")

SANDBOX_SHIPSTATION_KEY = "sandbox-api-key"
SANDBOX_SHIPSTATION_SECRET = "sandbox-api-secret"
# A V2 key is a single opaque string sent as the ``API-Key`` header; it is not a V1 key+secret pair.
SANDBOX_SHIPSTATION_V2_KEY = "sandbox-v2-api-key"
SANDBOX_NAV_CLIENT_ID = "sandbox-client-id"
SANDBOX_NAV_CLIENT_SECRET = "sandbox-client-secret"
SANDBOX_NAV_USERNAME = "SANDBOX"
SANDBOX_NAV_PASSWORD = "sandbox-password"
SANDBOX_NAV_INSTANCE = "DynamicsNAV110"
SANDBOX_NAV_COMPANY = "CRONUS USA, Inc."
SANDBOX_NAV_TENANT = "sandbox-tenant"
# The Windows account of a server instance whose credential type is Windows (NTLM/Negotiate).
SANDBOX_NAV_WINDOWS_USER = "SANDBOX\\navuser"
SANDBOX_NAV_WINDOWS_PASSWORD = "sandbox-windows-password"

# Emulated products. NAV 2018 (CU 09, build 11.0) is the default; "bc" is current Business Central.
NAV2018 = "nav2018"
BC = "bc"
PLATFORMS = (NAV2018, BC)
# NAV Server credential types the emulator serves (one per server instance, as in NAV and BC
# on-premises): Basic (or an Entra bearer token) for NavUserPassword, NTLM/Negotiate for Windows.
NAV_USER_PASSWORD = "NavUserPassword"
WINDOWS = "Windows"


def pacific_now() -> datetime:
    """The current Pacific wall-clock time, naive (how ShipStation stores and returns it)."""
    return datetime.now(PACIFIC).replace(tzinfo=None)


def format_pacific(value: datetime) -> str:
    """ShipStation's timestamp format: naive Pacific with 7 fractional digits."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


@dataclass
class Faults:
    """Switchable misbehaviour of one emulated API. Counters are consumed one request at a time."""

    latency_ms: float = 0.0
    # ShipStation-style per-minute budget (0 = unlimited); NAV uses it as its 429 throttle.
    rate_limit_per_minute: int = 0
    fail_next: int = 0  # next N requests answer fail_status
    fail_status: int = 500
    fail_paths: tuple[str, ...] = ()  # only requests whose path contains one of these fail
    throttle_next: int = 0  # next N requests answer 429 (with Retry-After / X-Rate-Limit-Reset)
    retry_after_seconds: int = 1
    drop_next: int = 0  # next N requests have their connection dropped without a response
    # NAV only: the next N PATCHes find the record changed by "another user" first (409).
    concurrent_edit_next: int = 0
    requests_seen: int = 0

    def take(self, counter: str) -> bool:
        value = getattr(self, counter)
        if value > 0:
            setattr(self, counter, value - 1)
            return True
        return False


@dataclass
class RequestLog:
    """Every request an app served: method, path, query string, status. Used by tests and bench."""

    entries: list[tuple[str, str, str, int]] = field(default_factory=list)

    def add(self, method: str, path: str, query: str, status: int) -> None:
        self.entries.append((method, path, query, status))

    def count(self, method: str | None = None, path_contains: str = "") -> int:
        return sum(
            1 for m, p, _q, _s in self.entries if (method is None or m == method) and path_contains in p
        )

    def clear(self) -> None:
        self.entries.clear()


@dataclass(frozen=True)
class PendingNotification:
    """A V2 webhook notification waiting for ``deliver_webhooks``: where to POST what."""

    webhook_id: str
    resource_type: str
    # Path and query of the resource_url, below the V2 server's base URL ("/v2/labels?batch_id=se-1").
    resource_path: str


@dataclass
class ShipStationV2State:
    """The V2 API's own surface over the shared ShipStation account: key, limits, faults, webhooks.

    The data (orders = V2 shipments, shipments = V2 labels, fulfillments) stays in
    ``ShipStationState``; V2 only sees it through other names and shapes.
    """

    api_key: str = SANDBOX_SHIPSTATION_V2_KEY
    # https://docs.shipstation.com/rate-limits: 200 requests per minute by default.
    rate_limit_per_minute: int = 200
    rate_window_seconds: float = 60.0
    # Neither the V2 spec nor the docs state a page_size maximum; None serves any size asked for,
    # a number silently caps it (lets tests check that a client follows ``pages``/``links``).
    max_page_size: int | None = None
    rate_windows: dict[str, list[float]] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    faults: Faults = field(default_factory=Faults)
    log: RequestLog = field(default_factory=RequestLog)
    # webhook_id ("se-…") -> {webhook_id, url, event, headers, name, store_id}
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[PendingNotification] = field(default_factory=list)
    ids: itertools.count = field(default_factory=lambda: itertools.count(70_001))

    def next_id(self) -> int:
        return next(self.ids)


@dataclass
class ShipStationState:
    stores: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    shipments: dict[int, dict[str, Any]] = field(default_factory=dict)
    fulfillments: dict[int, dict[str, Any]] = field(default_factory=dict)
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    api_key: str = SANDBOX_SHIPSTATION_KEY
    api_secret: str = SANDBOX_SHIPSTATION_SECRET
    rate_limit_per_minute: int = 40
    # Length of one rate-limit window (ShipStation: a minute); tests shrink it to a few seconds.
    rate_window_seconds: float = 60.0
    # Reproduce the documented envelope quirk "pages": 0 with a non-zero total.
    report_zero_pages: bool = False
    # Rate-limit windows per credential pair (hashed): [window start (monotonic s), requests].
    rate_windows: dict[str, list[float]] = field(default_factory=dict)
    # API requests being served right now, and the peak (shows whether requests overlapped).
    in_flight: int = 0
    max_in_flight: int = 0
    faults: Faults = field(default_factory=Faults)
    log: RequestLog = field(default_factory=RequestLog)
    ids: itertools.count = field(default_factory=lambda: itertools.count(900_000_001))
    v2: ShipStationV2State = field(default_factory=ShipStationV2State)

    def next_id(self) -> int:
        return next(self.ids)


@dataclass
class NavState:
    # NAV2018 or BC: field lengths (names are Text[50] in NAV 2018, Text[100] in BC), page 130's
    # editability (CU 391 fields editable in NAV 2018, read-only in BC) and JSON $batch (BC only).
    platform: str = NAV2018
    # SalesOrder page (42) records keyed by No; each carries the page's OData field names.
    sales_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    # SalesOrderSalesLines (page 46) records keyed by Document_No.
    sales_lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # PostedSalesShipment (page 130) records keyed by No.
    posted_shipments: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Shipping Agent (table 291) code -> its Shipping Agent Service codes (table 5790).
    shipping_agents: dict[str, set[str]] = field(default_factory=dict)
    tracking_max_length: int = 30
    # A $filter literal longer than its field fails the whole request (Application_FilterErrorException).
    enforce_filter_lengths: bool = True
    # Field name -> the length NAV enforces in filters when it is shorter than $metadata says
    # (tests of a client that must survive "NAV still refused").
    filter_length_overrides: dict[str, int] = field(default_factory=dict)
    published: set[str] = field(default_factory=lambda: {"SalesOrder", "PostedSalesShipment"})
    client_id: str = SANDBOX_NAV_CLIENT_ID
    client_secret: str = SANDBOX_NAV_CLIENT_SECRET
    username: str = SANDBOX_NAV_USERNAME
    password: str = SANDBOX_NAV_PASSWORD
    # NavUserPassword (Basic, and Entra bearer tokens) or Windows (NTLM/Negotiate per connection).
    credential_type: str = NAV_USER_PASSWORD
    # Windows only: NAV Server's ServicesUseNTLMAuthentication (true: challenge "NTLM" only;
    # false, the default: "Negotiate", i.e. SPNEGO, which falls back to NTLM without Kerberos).
    services_use_ntlm_authentication: bool = False
    windows_username: str = SANDBOX_NAV_WINDOWS_USER  # DOMAIN\user
    windows_password: str = SANDBOX_NAV_WINDOWS_PASSWORD
    token_ttl_seconds: int = 3599
    # Issued bearer tokens -> expiry (epoch seconds). Expire them all to emulate token expiry.
    tokens: dict[str, float] = field(default_factory=dict)
    max_page_size: int = 1000  # NAV 2013-2018 server default (Max Page Size)
    # Business Central online: at most 100 operations in one $batch (operational-limits-online).
    max_batch_operations: int = 100
    faults: Faults = field(default_factory=Faults)
    # HTTP requests (a $batch is one) ...
    log: RequestLog = field(default_factory=RequestLog)
    # ... and the operations inside $batch requests: method, path, query, status of each.
    batch_log: RequestLog = field(default_factory=RequestLog)
    versions: itertools.count = field(default_factory=lambda: itertools.count(1))
    # False: the token endpoint still issues tokens but the OData API rejects them with 401, as BC
    # does for an Entra app that is not registered on its "Microsoft Entra Applications" page.
    app_registered: bool = True
    # OData requests being served right now, and the peak, so tests can verify client concurrency caps.
    in_flight: int = 0
    max_in_flight: int = 0

    @classmethod
    def for_platform(cls, platform: str = NAV2018) -> "NavState":
        """A fresh NAV with the platform's defaults (see ``apply_platform``)."""
        state = cls()
        state.apply_platform(platform)
        return state

    def apply_platform(self, platform: str) -> None:
        """Switch the emulated product and take its defaults.

        BC: Package Tracking No. Text[50] (BC 27 and later; set ``tracking_max_length = 30`` for
        BC 26 and earlier) and a 20,000-entity page; NAV 2018: Text[30] and 1,000 entities.
        """
        if platform not in PLATFORMS:
            raise ValueError(f"unknown NAV platform {platform!r}; expected one of {PLATFORMS}")
        self.platform = platform
        self.tracking_max_length = 50 if platform == BC else 30
        self.max_page_size = 20_000 if platform == BC else 1000

    def stamp(self, record: dict[str, Any]) -> None:
        """Give a record a new row version, as any write in NAV does."""
        record["_version"] = next(self.versions)

    @staticmethod
    def etag(record: dict[str, Any]) -> str:
        raw = f"'{record.get('_version', 0)};{record.get('No', record.get('Line_No', ''))}'"
        return 'W/"' + base64.b64encode(raw.encode()).decode() + '"'

    def expire_tokens(self) -> None:
        for token in self.tokens:
            self.tokens[token] = 0.0


@dataclass
class SandboxWorld:
    shipstation: ShipStationState = field(default_factory=ShipStationState)
    nav: NavState = field(default_factory=NavState)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def for_platform(cls, platform: str = NAV2018) -> "SandboxWorld":
        """An empty world whose NAV emulates ``platform`` (``"nav2018"`` or ``"bc"``)."""
        return cls(nav=NavState.for_platform(platform))
