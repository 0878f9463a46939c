"""A small, thread-safe client for NAV / Business Central OData V4 page web services.

What it guarantees (the NAV behaviour behind each point is in docs/api-notes.md):
* every filter value and key is quoted by type and percent-encoded by httpx;
* collections are read with server-driven paging, following `@odata.nextLink`, and only
  ever on the configured host, so credentials are never sent elsewhere;
* every PATCH carries the entity's own ETag in `If-Match`, never `*`; a stale ETag is a
  :class:`NavConflictError` ("re-read and decide again");
* at most ``max_concurrency`` requests are in flight at once (BC online allows 5 per user), however
  many threads call in;
* 429/502/503/504 are retried honouring `Retry-After` (bounded), 500 and transport failures with
  bounded, jittered exponential backoff (tenacity); other 4xx are never retried. Retrying a PATCH
  is safe: if the first attempt did land, the repeated one fails with 409 on the old ETag.
"""

import json
import random
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from shipnav_dagster.nav.auth import BasicAuth, NtlmAuth, OAuth2ClientCredentials, credentials_hint
from shipnav_dagster.nav.errors import (
    NavAuthError,
    NavError,
    NavNotFoundError,
    NavThrottledError,
    NavUnavailableError,
    error_from_response,
)
from shipnav_dagster.nav.filters import any_of, chunked, field_name, key_predicate
from shipnav_dagster.nav.lookup import Lookup, run_lookup
from shipnav_dagster.nav.metadata import ServiceSchema, parse_metadata
from shipnav_dagster.nav.stats import NavStats
from shipnav_dagster.settings import Settings, SettingsError

# Keep each $filter well inside common URL limits once percent-encoded: HTTP.sys (NAV's listener)
# takes 16 KB, common proxies 8 KB. Fewer, fuller lookups are what keep calls per written order low.
MAX_FILTER_CHARS = 4000
ORDER = "Order"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} to NAV")


def _check_etag(etag: str) -> str:
    # A PATCH without the entity's own ETag could overwrite another user's change (lost update).
    if not isinstance(etag, str) or not etag.strip():
        raise ValueError("a PATCH needs the entity's @odata.etag (read the record first)")
    if etag.strip() == "*":
        raise ValueError("If-Match: * would overwrite concurrent changes; pass the entity's @odata.etag")
    return etag


def _with_fields(select: Sequence[str] | None, required: Iterable[str]) -> list[str] | None:
    if select is None:
        return None
    return list(dict.fromkeys([*required, *select]))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.UnsupportedProtocol):
        return False  # a configuration error, not a transient failure
    return isinstance(exc, httpx.TransportError | NavThrottledError | NavUnavailableError)


class NavClient:
    """OData V4 access to the published SalesOrder / SalesOrderSalesLines / PostedSalesShipment."""

    def __init__(
        self,
        service_root: str,
        auth: httpx.Auth,
        *,
        sales_order_service: str = "SalesOrder",
        sales_lines_segment: str = "SalesOrderSalesLines",
        posted_shipment_service: str = "PostedSalesShipment",
        max_concurrency: int = 4,
        timeout: float = 30.0,
        page_size: int | None = None,
        max_attempts: int = 5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_retry_after: float = 60.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        filter_chunk: int = 100,
    ) -> None:
        if max_concurrency < 1 or max_attempts < 1:
            raise ValueError("max_concurrency and max_attempts must be at least 1")
        self.service_root = service_root.rstrip("/")
        self.sales_order_service = field_name(sales_order_service)
        self.sales_lines_segment = field_name(sales_lines_segment)
        self.posted_shipment_service = field_name(posted_shipment_service)
        self.page_size = page_size
        self.max_attempts = max_attempts
        self.max_retry_after = max_retry_after
        self.filter_chunk = filter_chunk
        self.auth = auth
        self.stats = NavStats()
        self._sleep = sleep
        self._backoff_initial, self._backoff_max = backoff_initial, backoff_max
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._schema: ServiceSchema | None = None
        self._origin = httpx.URL(self.service_root).copy_with(path="/", query=None, fragment=None)
        self._http = httpx.Client(
            auth=auth,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            headers={"Accept": "application/json", "OData-Version": "4.0", "OData-MaxVersion": "4.0"},
            event_hooks={"request": [self._count_request]},
        )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "NavClient":
        """Build the client from the settings (NAV_AUTH picks OAuth2, Basic or NTLM); overrides win."""
        missing = settings.missing_for_nav()
        if missing:
            raise SettingsError(
                f"missing settings for NAV: {', '.join(missing)} (NAV_AUTH={settings.nav_auth})"
            )
        timeout = float(settings.shipnav_http_timeout_seconds)
        auth: httpx.Auth
        if settings.nav_auth == "oauth2":
            auth = OAuth2ClientCredentials(
                settings.value("nav_token_url"),
                settings.value("nav_client_id"),
                settings.value("nav_client_secret"),
                settings.nav_scope,
                timeout=timeout,
                transport=overrides.get("transport"),
            )
        elif settings.nav_auth == "ntlm":
            # NTLM authenticates the connection: the auth's transport keeps each handshake on one.
            auth = NtlmAuth(
                settings.value("nav_username"),
                settings.value("nav_password"),
                connections=int(overrides.get("max_concurrency", settings.nav_max_concurrency)),
            )
            overrides.setdefault("transport", auth.transport)
        else:
            auth = BasicAuth(settings.value("nav_username"), settings.value("nav_password"))
        options: dict[str, Any] = {
            "sales_order_service": settings.nav_sales_order_service,
            "sales_lines_segment": settings.nav_sales_lines_segment,
            "posted_shipment_service": settings.nav_posted_shipment_service,
            "max_concurrency": settings.nav_max_concurrency,
            "timeout": timeout,
            "filter_chunk": settings.shipnav_nav_filter_chunk,
        }
        options.update(overrides)
        return cls(settings.value("nav_odata_url"), auth, **options)

    def close(self) -> None:
        self._http.close()
        closer = getattr(self.auth, "close", None)
        if callable(closer):
            closer()

    def __enter__(self) -> "NavClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- addresses ---------------------------------------------------------------------------

    def order_path(self, no: str) -> str:
        return self.sales_order_service + key_predicate(Document_Type=ORDER, No=no)

    def lines_path(self, no: str) -> str:
        return f"{self.order_path(no)}/{self.sales_lines_segment}"

    def line_path(self, document_no: str, line_no: int) -> str:
        key = key_predicate(Document_Type=ORDER, Document_No=document_no, Line_No=int(line_no))
        return self.lines_path(document_no) + key

    def posted_shipment_path(self, no: str) -> str:
        return self.posted_shipment_service + key_predicate(No=no)

    def url(self, path: str) -> str:
        return f"{self.service_root}/{path.lstrip('/')}"

    # --- reading -----------------------------------------------------------------------------

    def query(
        self,
        entity_set_or_path: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        top: int | None = None,
        orderby: str | Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every entity of a collection, across all server pages."""
        params: dict[str, str] = {}
        if filter:
            params["$filter"] = filter
        if select:
            params["$select"] = ",".join(field_name(f) for f in select)
        if top is not None:
            params["$top"] = str(int(top))
        if orderby:
            params["$orderby"] = orderby if isinstance(orderby, str) else ",".join(orderby)
        headers = {"Prefer": f"odata.maxpagesize={self.page_size}"} if self.page_size else {}
        url: httpx.URL | str = self.url(entity_set_or_path)
        seen: set[str] = set()
        while True:
            response = self._request("GET", url, params=params or None, headers=headers)
            data = self._json(response)
            value = data.get("value")
            if not isinstance(value, list):
                raise NavError(response.status_code, "UnexpectedResponse", "a collection without 'value'")
            yield from value
            link = data.get("@odata.nextLink")
            if not link:
                return
            url = self._next_url(response.request.url, str(link))
            if str(url) in seen:
                raise NavError(200, "PagingLoop", f"NAV returned the same nextLink twice: {url}")
            seen.add(str(url))
            params = {}  # the nextLink carries every query option

    def find_sales_orders(
        self,
        field: str,
        values: Iterable[Any],
        *,
        select: Sequence[str] | None = None,
        chunk: int | None = None,
    ) -> list[dict[str, Any]]:
        """Orders whose ``field`` equals any of ``values``: one `or` chain per chunk, one field."""
        return self.lookup(
            self.sales_order_service, field, values, select=_keys(select, "No"), chunk=chunk
        ).rows

    def lookup(
        self,
        entity_set: str,
        field: str,
        values: Iterable[Any],
        *,
        select: Sequence[str] | None = None,
        chunk: int | None = None,
    ) -> Lookup:
        """Entities whose ``field`` equals any of ``values``, chunked, side by side; the values NAV
        refuses to filter on are isolated (see ``nav.lookup``)."""
        groups = list(chunked(field, values, chunk or self.filter_chunk, MAX_FILTER_CHARS))

        def one(group: list[Any]) -> list[dict[str, Any]]:
            return list(self.query(entity_set, filter=any_of(field, group), select=select))

        return run_lookup(one, groups, self.max_concurrency)

    def field_lengths(self, entity_set: str) -> dict[str, int]:
        """``MaxLength`` of each string property of an entity set, from ``$metadata`` (read once
        per client); empty when NAV does not publish it or it cannot be read."""
        if self._schema is None:
            try:
                self._schema = parse_metadata(self.metadata())
            except (NavError, ET.ParseError):
                self._schema = ServiceSchema({}, {})
        entity = self._schema.entity(entity_set)
        if entity is None:
            return {}
        return {name: length for name, length in entity.properties.items() if length is not None}

    def get_sales_order(self, no: str, select: Sequence[str] | None = None) -> dict[str, Any] | None:
        """The order, or None when NAV says it does not exist (deleted after full posting)."""
        try:
            return self._get_entity(self.order_path(no), select)
        except NavNotFoundError as exc:
            if exc.code == "BadRequest_ResourceNotFound":
                raise NavNotFoundError(
                    exc.status,
                    exc.code,
                    f"{exc.message} (is NAV_SALES_ORDER_SERVICE={self.sales_order_service} published?)",
                    exc.correlation_id,
                ) from exc
            return None

    def sales_lines(self, no: str, select: Sequence[str] | None = None) -> list[dict[str, Any]]:
        fields = _with_fields(select, ("Document_No", "Line_No"))
        return list(self.query(self.lines_path(no), select=fields))

    def posted_shipments_for_orders(
        self, order_nos: Iterable[str], select: Sequence[str] | None = None, chunk: int | None = None
    ) -> list[dict[str, Any]]:
        """Posted Sales Shipments (page 130) of these orders; an order may have several."""
        fields = _with_fields(select, ("No", "Order_No"))
        return self.lookup(
            self.posted_shipment_service, "Order_No", order_nos, select=fields, chunk=chunk
        ).rows

    def get_posted_shipment(self, no: str, select: Sequence[str] | None = None) -> dict[str, Any] | None:
        try:
            return self._get_entity(self.posted_shipment_path(no), select)
        except NavNotFoundError as exc:
            if exc.code == "BadRequest_ResourceNotFound":
                raise
            return None

    def metadata(self) -> str:
        """The service's CSDL ($metadata) document."""
        response = self._request("GET", self.url("$metadata"), headers={"Accept": "application/xml"})
        return response.text

    # --- writing -----------------------------------------------------------------------------

    def patch_sales_order(self, no: str, etag: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self._patch(self.order_path(no), etag, changes)

    def patch_sales_line(
        self, document_no: str, line_no: int, etag: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        return self._patch(self.line_path(document_no, line_no), etag, changes)

    def patch_posted_shipment(self, no: str, etag: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self._patch(self.posted_shipment_path(no), etag, changes)

    def patch_path(self, path: str, etag: str, changes: dict[str, Any]) -> dict[str, Any]:
        """PATCH the entity at ``path`` (below the service root) with its ETag."""
        return self._patch(path, etag, changes)

    def _patch(self, path: str, etag: str, changes: dict[str, Any]) -> dict[str, Any]:
        _check_etag(etag)
        if not changes:
            raise ValueError("nothing to PATCH")
        for name in changes:
            field_name(name)
        body = json.dumps(changes, default=_json_default, ensure_ascii=False).encode("utf-8")
        headers = {"If-Match": etag, "Content-Type": "application/json; charset=utf-8"}
        response = self._request("PATCH", self.url(path), content=body, headers=headers)
        if response.status_code == 204 or not response.content:
            # NAV answers 200 with the entity; a server that honours return=minimal does not.
            return self._get_entity(path, None)
        return self._json(response)

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body (a ``$batch``) and read the JSON answer."""
        content = json.dumps(body, default=_json_default, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        return self._json(self._request("POST", self.url(path), content=content, headers=headers))

    @staticmethod
    def patch_body_problem(etag: str, changes: dict[str, Any]) -> None:
        """The same checks a single PATCH makes, for an operation going into a ``$batch``."""
        _check_etag(etag)
        if not changes:
            raise ValueError("nothing to PATCH")
        for name in changes:
            field_name(name)

    # --- plumbing ----------------------------------------------------------------------------

    def _get_entity(self, path: str, select: Sequence[str] | None) -> dict[str, Any]:
        params = {"$select": ",".join(field_name(f) for f in select)} if select else None
        return self._json(self._request("GET", self.url(path), params=params))

    def _next_url(self, current: httpx.URL, link: str) -> httpx.URL:
        target = current.join(link)
        if (target.scheme, target.host, target.port) != (
            self._origin.scheme,
            self._origin.host,
            self._origin.port,
        ):
            raise NavError(
                200,
                "ForeignNextLink",
                f"NAV's nextLink points to another server ({target.host}); not sending credentials there",
            )
        return target

    def _count_request(self, request: httpx.Request) -> None:
        self.stats.add(request.method)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        advised = getattr(exc, "retry_after", None)
        if advised is not None:
            return min(float(advised), self.max_retry_after)
        # Exponential with "equal jitter": half fixed, half random, so parallel callers spread out.
        ceiling = min(self._backoff_max, self._backoff_initial * 2 ** (state.attempt_number - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add("retries")

    def _request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, **kwargs)
        except httpx.TransportError as exc:
            raise NavUnavailableError(
                0,
                type(exc).__name__,
                f"no answer from NAV after {self.max_attempts} attempt(s): {exc}",
                method=method,
                url=str(url),
            ) from exc

    def _attempt(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        with self._slots:
            response = self._http.request(method, url, **kwargs)
        if response.is_success:
            return response
        raise self._error(response)

    def _error(self, response: httpx.Response) -> NavError:
        error = error_from_response(response)
        if response.status_code != 401:
            return error
        hint = credentials_hint(self.auth)
        return NavAuthError(
            error.status,
            error.code,
            f"{hint}: {error.message}",
            error.correlation_id,
            method=error.method,
            url=error.url,
        )

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise NavError(
                response.status_code, "InvalidJson", "NAV answered with a body that is not JSON"
            ) from exc
        if not isinstance(data, dict):
            raise NavError(
                response.status_code, "UnexpectedResponse", "NAV answered with a non-object JSON body"
            )
        return data


def _keys(select: Sequence[str] | None, *keys: str) -> list[str] | None:
    return _with_fields(select, keys)
