"""ShipStation API V2 client: the ``API-Key`` header, UTC windows, defensive paging, its own budget.

What it reads (https://docs.shipstation.com, the "ShipStation API v2" 2.0.0 spec):

* new labels: ``GET /v2/labels?label_status=completed&created_at_start&created_at_end
  &sort_by=created_at&sort_dir=asc``, oldest first so labels arriving during the scan land on
  later pages; labels have no modified-since filter;
* voids: ``GET /v2/labels?label_status=voided&sort_by=modified_at&sort_dir=desc``, newest void
  first, until a page reaches voids older than the window (a void never changes ``created_at``).
  That order is not documented, so it is checked on every page: voids that do not come newest
  first are read to the end;
* fulfillments (marked shipped outside labels): ``GET /v2/fulfillments?create_date_start
  &create_date_end`` (``create_date_*``, not ``created_at_*``: docs.shipstation.com/list-fulfillments);
* order context: ``GET /v2/shipments?modified_at_start&modified_at_end&sort_by=modified_at
  &sort_dir=asc`` and ``GET /v2/shipments/{shipment_id}``.

Pages are as large as the API takes: ``page_size`` 500 (the spec sets no maximum; a 400 that
names ``page_size`` makes the client ask again with a fifth of it, down to the default 25). Paging
trusts none of ``total``, ``pages`` and ``links`` alone, and reads ascending lists page after page
from the last time read, so records leaving or joining the list mid-scan hide none (``paging.py``).
Requests are paced by ``budget.py`` (200 a minute), a 429 waits ``Retry-After``; retries and
errors are those of both generations (``shipstation.http``).
"""

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from shipnav_dagster.shipstation.errors import (
    V2_AUTH_MESSAGE,
    ShipStationAuthError,
    ShipStationError,
    ShipStationRateLimited,
    ShipStationRequestError,
)
from shipnav_dagster.shipstation.http import ShipStationHttp
from shipnav_dagster.shipstation.v2.budget import RequestBudget
from shipnav_dagster.shipstation.v2.ids import se_id
from shipnav_dagster.shipstation.v2.paging import FetchPage, after_last, by_page, collection_of_path
from shipnav_dagster.shipstation.v2.timeutil import filter_window, parse_instant

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 500
SERVER_DEFAULT_PAGE_SIZE = 25  # the spec's page_size default; never asked for less


class ShipStationV2Client(ShipStationHttp):
    """Synchronous client of ShipStation API V2; ``base_url`` is the host without ``/v2``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        page_size: int = DEFAULT_PAGE_SIZE,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        reset_margin: float = 1.0,
        max_rate_wait: float = 120.0,
        budget: RequestBudget | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("SHIPSTATION_API_KEY is required")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        root = base_url.rstrip("/")
        # Every path below begins /v2/; a base URL that already ends in /v2 is taken as meant.
        root = root.removesuffix("/v2")
        super().__init__(
            root,
            secrets=[api_key],
            headers={"API-Key": api_key},
            timeout=timeout,
            max_attempts=max_attempts,
            transport=transport,
            sleep=sleep,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            reset_margin=reset_margin,
            max_rate_wait=max_rate_wait,
        )
        self.page_size = page_size
        self.budget = budget or RequestBudget()
        self.stats.limit = self.budget.limit

    # -- the streams ------------------------------------------------------------------------------

    def iter_labels_created(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Completed labels created in ``[start, end]`` (aware datetimes), oldest first."""
        lower, upper = filter_window(start, end)
        params = {
            "label_status": "completed",
            "created_at_start": lower,
            "created_at_end": upper,
            "sort_by": "created_at",
            "sort_dir": "asc",
        }
        return self._ascending("/v2/labels", params, "created_at_start", "created_at")

    def iter_labels_voided(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Labels voided since ``start``: newest void first, until the voids are older than it."""
        filter_window(start, end)  # a naive or reversed window fails at the call
        params = {"label_status": "voided", "sort_by": "modified_at", "sort_dir": "desc"}
        return self._voids(params, start)

    def iter_fulfillments_created(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        lower, upper = filter_window(start, end)
        params = {
            "create_date_start": lower,
            "create_date_end": upper,
            "sort_by": "created_at",
            "sort_dir": "asc",
        }
        return self._ascending("/v2/fulfillments", params, "create_date_start", "created_at")

    def iter_shipments_modified(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        lower, upper = filter_window(start, end)
        params = {
            "modified_at_start": lower,
            "modified_at_end": upper,
            "sort_by": "modified_at",
            "sort_dir": "asc",
        }
        return self._ascending("/v2/shipments", params, "modified_at_start", "modified_at")

    # -- single reads, webhooks --------------------------------------------------------------------

    def get_shipment(self, number: int) -> dict[str, Any] | None:
        """The V2 shipment ``se-<number>`` (the V1 order of that id); None when unknown."""
        path = f"/v2/shipments/{se_id(number)}"
        response = self._request("GET", path, allow_404=True, endpoint="/v2/shipments/{shipment_id}")
        return None if response is None else self._json_object(response, path)

    def probe(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | list[Any]:
        """One GET of ``path`` with ``page_size=1``, its JSON (``shipnav check``)."""
        response = self._request("GET", path, params={"page": "1", "page_size": "1", **(params or {})})
        assert response is not None
        body = self._json(response, path)
        if not isinstance(body, dict | list):
            raise ShipStationError("unexpected ShipStation response: not JSON", method="GET", path=path)
        return body

    def list_webhooks(self) -> list[dict[str, Any]]:
        path = "/v2/environment/webhooks"
        response = self._request("GET", path)
        assert response is not None
        body = self._json(response, path)
        return self._without_nulls(body if isinstance(body, list) else [])

    def create_webhook(
        self,
        url: str,
        event: str,
        headers: list[dict[str, str]],
        name: str | None = None,
        store_id: int | None = None,
    ) -> dict[str, Any]:
        """``POST /v2/environment/webhooks``: ``headers`` are sent back with every notification."""
        body: dict[str, Any] = {"url": url, "event": event, "headers": headers}
        if name is not None:
            body["name"] = name
        if store_id is not None:
            body["store_id"] = store_id
        path = "/v2/environment/webhooks"
        response = self._request("POST", path, json=body)
        assert response is not None
        return self._json_object(response, path)

    def update_webhook(self, webhook_id: str, url: str, headers: list[dict[str, str]]) -> None:
        path = f"/v2/environment/webhooks/{webhook_id}"
        self._request(
            "PUT", path, json={"url": url, "headers": headers}, endpoint="/v2/environment/webhooks/{id}"
        )

    def fetch_resource_url(self, url: str) -> list[dict[str, Any]]:
        """Every record behind a webhook ``resource_url`` (all pages), as raw dicts. The caller
        has checked the URL (``webhooks.policy``); shipnav's page size replaces the URL's."""
        parts = urlsplit(url)
        collection = collection_of_path(parts.path)
        if collection is None:
            raise ShipStationError("not a V2 list of labels, fulfillments or shipments", path=parts.path)
        target = parts._replace(query="", fragment="").geturl()
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        fetch = self._fetcher(target, parts.path or "/")
        records: list[dict[str, Any]] = []
        for items in by_page(fetch, params, collection, parts.path or "/", lambda: self.page_size):
            records.extend(items)
        return records

    # -- paging ------------------------------------------------------------------------------------

    def _fetch_page(self, url: str, path: str, query: dict[str, str], page: int) -> dict[str, Any]:
        """One page of a list; a 400 that names page_size asks again with a fifth of it (down to
        the API's default), which only the first page of a scan can meet."""
        while True:
            sent = {k: v for k, v in query.items() if k.lower() not in ("page", "page_size")}
            sent.update(page=str(page), page_size=str(self.page_size))
            try:
                response = self._request("GET", url, params=sent, endpoint=path)
            except ShipStationRequestError as exc:
                if not self._smaller_pages(exc):
                    raise
                continue
            assert response is not None
            body = self._json_object(response, path)
            collection = collection_of_path(path)
            if collection is not None and isinstance(body.get(collection), list):
                body[collection] = self._without_nulls(body[collection])
            return body

    def _fetcher(self, url: str, path: str) -> FetchPage:
        return lambda query, page: self._fetch_page(url, path, query, page)

    def _ascending(
        self, path: str, params: dict[str, str], start_param: str, time_field: str
    ) -> Iterator[dict[str, Any]]:
        collection = collection_of_path(path)
        assert collection is not None
        pages = after_last(
            self._fetcher(path, path),
            params,
            collection,
            path,
            lambda: self.page_size,
            start_param=start_param,
            time_field=time_field,
        )
        for items in pages:
            yield from items

    def _voids(self, params: dict[str, str], since: datetime) -> Iterator[dict[str, Any]]:
        newest_first = True
        previous: datetime | None = None
        path = "/v2/labels"
        for items in by_page(self._fetcher(path, path), params, "labels", path, lambda: self.page_size):
            yield from items
            oldest = None
            for item in items:
                when = _voided_at(item)
                if when is None:
                    continue
                if previous is not None and when > previous and newest_first:
                    newest_first = False
                    log.warning(
                        "voided labels do not come newest void first (sort_by=modified_at); "
                        "reading all of them this time"
                    )
                previous = when
                oldest = when if oldest is None else min(oldest, when)
            if newest_first and oldest is not None and oldest < since:
                return

    def _smaller_pages(self, exc: ShipStationRequestError) -> bool:
        if exc.status != 400 or "page_size" not in exc.message or self.page_size <= SERVER_DEFAULT_PAGE_SIZE:
            return False
        self.page_size = max(SERVER_DEFAULT_PAGE_SIZE, self.page_size // 5)
        log.warning("ShipStation refused the page size; asking for %d records a page", self.page_size)
        return True

    # -- rate limit: our own count, and Retry-After -------------------------------------------------

    def _pace(self) -> None:
        delay = min(self.budget.delay(), self._max_rate_wait)
        if delay > 0:
            self.stats.paced_seconds += delay
            self._sleep(delay)
        self.budget.spend()

    def _note_response(self, response: httpx.Response) -> None:
        self.stats.remaining = self.budget.remaining()

    def _auth_error(self, status: int, method: str, path: str) -> ShipStationError:
        return ShipStationAuthError(status=status, method=method, path=path, message=V2_AUTH_MESSAGE)

    def _rate_limited(self, wait: float | None, method: str, path: str) -> ShipStationRateLimited:
        return ShipStationRateLimited(
            f"ShipStation rate limit exceeded ({self.budget.limit} requests per minute per API key)",
            reset_seconds=wait,
            method=method,
            path=path,
        )


def _voided_at(item: Any) -> datetime | None:
    value = item.get("voided_at") if isinstance(item, dict) else None
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None
