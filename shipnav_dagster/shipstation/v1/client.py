"""ShipStation V1 client: Basic auth, Pacific windows, defensive pagination, rate limits, retries.

Built to the API's documented behaviour (docs/api-notes.md has the facts and their sources):

* windows are sent as Pacific wall-clock and widened around DST so no instant is lost;
* pagination does not trust ``pages`` (documented examples show ``pages: 0`` with items), it also
  stops once ``total`` records were seen, continues on full pages when there is no usable total,
  and stops on an empty page, a page cap or a page that repeats the previous one;
* the 40 requests/minute budget is spent in full and the client waits ``X-Rate-Limit-Reset`` only
  when one request is left (or on a 429);
* requests, retries and errors are those of both generations (``shipstation.http``).
"""

import base64
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from shipnav_dagster.shipstation.errors import ShipStationError
from shipnav_dagster.shipstation.http import ClientStats, ShipStationHttp, int_or_none
from shipnav_dagster.shipstation.v1.stores import Store, parse_store
from shipnav_dagster.shipstation.v1.timeutil import pacific_wallclock_window

__all__ = ["ClientStats", "ShipStationClient"]

MAX_PAGES = 10_000  # 5 million records per window at 500 a page: beyond that something loops
SERVER_DEFAULT_PAGE_SIZE = 100  # what ShipStation uses when a URL names no pageSize
COLLECTIONS = ("shipments", "orders", "fulfillments")


class ShipStationClient(ShipStationHttp):
    """Synchronous client of the ShipStation V1 API.

    ``sleep`` is used for every wait (rate-limit pacing, 429 resets, retry back-off) so callers can
    observe or bound waits; it defaults to ``time.sleep``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        page_size: int = 500,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        reset_margin: float = 1.0,
        max_rate_wait: float = 120.0,
        low_remaining: int = 1,
    ) -> None:
        if not api_key or not api_secret:
            raise ValueError("SHIPSTATION_API_KEY and SHIPSTATION_API_SECRET are both required")
        if not 1 <= page_size <= 500:
            raise ValueError("page_size must be between 1 and 500 (ShipStation's maximum)")
        # The Basic token too: a proxy echoing the Authorization header must not leak it.
        token = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
        super().__init__(
            base_url,
            secrets=[token, api_key, api_secret],
            auth=httpx.BasicAuth(api_key, api_secret),
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
        self._low_remaining = low_remaining

    # -- public API ---------------------------------------------------------------------------

    # Records come back as the raw JSON objects ShipStation sent: each is parsed on its own by
    # shipstation.v1.parser, so one unreadable record never costs the rest of its page.

    def iter_shipments_created(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Labels created in ``[start, end]`` (aware datetimes), oldest first, with items."""
        return self._iter_window("/shipments", "createDate", start, end, _SHIPMENT_PARAMS)

    def iter_shipments_voided(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Labels voided in ``[start, end]``: voids never change createDate, so this is separate."""
        return self._iter_window("/shipments", "voidDate", start, end, _SHIPMENT_PARAMS)

    def iter_orders_modified(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        params = {"sortBy": "ModifyDate", "sortDir": "ASC"}
        return self._iter_window("/orders", "modifyDate", start, end, params)

    def iter_fulfillments_created(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Orders marked as shipped outside the label flow (they never appear in /shipments)."""
        params = {"sortBy": "CreateDate", "sortDir": "ASC"}
        return self._iter_window("/fulfillments", "createDate", start, end, params)

    def get_order(self, order_id: int) -> dict[str, Any] | None:
        """One order by its ShipStation orderId; None when ShipStation does not know it."""
        response = self._request(
            "GET", f"/orders/{int(order_id)}", allow_404=True, endpoint="/orders/{orderId}"
        )
        if response is None:
            return None
        return self._json_object(response, f"/orders/{order_id}")

    def list_stores(self, *, show_inactive: bool = False) -> list[Store]:
        params = {"showInactive": "true"} if show_inactive else None
        response = self._request("GET", "/stores", params=params)
        assert response is not None
        body = self._json(response, "/stores")
        if not isinstance(body, list):
            raise ShipStationError("unexpected /stores response: not a list", method="GET", path="/stores")
        return [parse_store(item) for item in self._without_nulls(body)]

    def subscribe_webhook(
        self,
        target_url: str,
        event: str,
        store_id: int | None = None,
        friendly_name: str | None = None,
    ) -> int | dict[str, Any]:
        """Subscribe a V1 webhook; the new webhook id (or the whole answer if it carries none).

        The historic docs answer ``{"id": n}``, the current ones describe ``WebHookID``: both are
        read.
        """
        body: dict[str, Any] = {"target_url": target_url, "event": event}
        if store_id is not None:
            body["store_id"] = store_id
        if friendly_name is not None:
            body["friendly_name"] = friendly_name
        response = self._request("POST", "/webhooks/subscribe", json=body)
        assert response is not None
        answer = self._json_object(response, "/webhooks/subscribe")
        for key in ("id", "WebHookID", "webHookId", "webhookId"):
            if isinstance(answer.get(key), int):
                return int(answer[key])
        return answer

    def list_webhooks(self) -> list[dict[str, Any]]:
        response = self._request("GET", "/webhooks")
        assert response is not None
        body = self._json(response, "/webhooks")
        hooks = body.get("webhooks") if isinstance(body, dict) else body
        return self._without_nulls(hooks if isinstance(hooks, list) else [])

    def unsubscribe_webhook(self, webhook_id: int) -> bool:
        """Delete a webhook; False when it did not exist."""
        path = f"/webhooks/{int(webhook_id)}"
        return self._request("DELETE", path, allow_404=True, endpoint="/webhooks/{webhookId}") is not None

    def fetch_resource_url(self, url: str) -> list[dict[str, Any]]:
        """Every record behind a webhook ``resource_url`` (all pages), as raw dicts.

        The URL is absolute and may name another API host (``ssapi11...``); the caller must have
        validated it. The same credentials are sent.
        """
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        size = int_or_none(_get_ci(query, "pageSize")) or SERVER_DEFAULT_PAGE_SIZE
        target = parts._replace(query="", fragment="").geturl()
        records: list[dict[str, Any]] = []
        for body, _page in self._pages(target, query, size, parts.path or "/"):
            records.extend(self._without_nulls(_collection_of(body)))
        return records

    # -- windows and pagination ---------------------------------------------------------------

    def _iter_window(
        self,
        path: str,
        date_param: str,
        start: datetime,
        end: datetime,
        base: dict[str, str],
    ) -> Iterator[dict[str, Any]]:
        # Computed now, not on first iteration, so a naive or reversed window fails at the call.
        lower, upper = pacific_wallclock_window(start, end)
        params = {**base, f"{date_param}Start": lower, f"{date_param}End": upper}
        return self._iter_items(path, params)

    def _iter_items(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        for body, _page in self._pages(path, params, self.page_size, path):
            yield from self._without_nulls(_collection_of(body))

    def _pages(
        self, url: str, params: dict[str, str], page_size: int, path: str
    ) -> Iterator[tuple[dict[str, Any], int]]:
        """Raw page bodies until the data is exhausted, whatever ``pages`` claims."""
        seen = 0
        previous_ids: tuple[Any, ...] | None = None
        for number in range(1, MAX_PAGES + 1):
            query = {k: v for k, v in params.items() if k.lower() not in ("page", "pagesize")}
            query.update(page=str(number), pageSize=str(page_size))
            response = self._request("GET", url, params=query, endpoint=path)
            assert response is not None
            body = self._json_object(response, path)
            items = _collection_of(body)
            ids = tuple(_record_id(item) for item in items)
            if any(i is not None for i in ids) and ids == previous_ids:
                raise ShipStationError(
                    f"page {number} repeated page {number - 1}; the server ignores paging, refusing to loop",
                    method="GET",
                    path=path,
                )
            previous_ids = ids
            seen += len(items)
            yield body, number
            if not _has_more(body, number, len(items), page_size, seen):
                return
        raise ShipStationError(f"more than {MAX_PAGES} pages; stopping", method="GET", path=path)

    # -- rate limit: X-Rate-Limit-* on every response -----------------------------------------

    def _note_response(self, response: httpx.Response) -> None:
        limit = int_or_none(response.headers.get("X-Rate-Limit-Limit"))
        remaining = int_or_none(response.headers.get("X-Rate-Limit-Remaining"))
        reset = int_or_none(response.headers.get("X-Rate-Limit-Reset"))
        if remaining is None or reset is None:
            return
        self.stats.limit, self.stats.remaining, self.stats.reset = limit, remaining, reset
        self.stats.reset_at = time.monotonic() + reset

    def _pace(self) -> None:
        """Spend the budget in full, then wait for the window to reset instead of hitting a 429.

        Requests go out unpaced while more than ``low_remaining`` are left in the window (40 a
        minute on V1: a sync that needs 39 calls makes them all at once); at ``low_remaining`` or
        below the client waits for ``X-Rate-Limit-Reset``, keeping that reserve for other users
        of the same key (the webhook fetcher).
        """
        stats = self.stats
        if stats.remaining is None or stats.reset_at is None:
            return
        left = stats.reset_at - time.monotonic()
        if left <= 0 or stats.remaining > self._low_remaining:
            return
        delay = min(left + self._reset_margin, self._max_rate_wait)
        stats.paced_seconds += delay
        self._sleep(delay)
        # The budget is assumed fresh after the reset; the next response tells the truth.
        stats.remaining, stats.reset_at = None, None


_SHIPMENT_PARAMS = {"sortBy": "CreateDate", "sortDir": "ASC", "includeShipmentItems": "true"}


def _has_more(body: dict[str, Any], number: int, count: int, page_size: int, seen: int) -> bool:
    """Whether another page may hold data; ``pages`` alone is not trusted (it can be 0).

    A reported ``total`` ends the scan once that many records were seen (a full last page then
    costs no extra empty request); a total the data already contradicts (more records seen than
    it says) is ignored and a full page asks for the next one.
    """
    if count == 0:
        return False
    total = int_or_none(body.get("total"))
    if total is not None and seen <= total:
        return seen < total
    pages = int_or_none(body.get("pages"))
    return count >= page_size or (pages is not None and number < pages)


def _collection_of(body: dict[str, Any] | list[Any]) -> list[Any]:
    if isinstance(body, list):
        return body
    for key in COLLECTIONS:
        value = body.get(key)
        if isinstance(value, list):
            return value
    return []


def _record_id(item: Any) -> Any:
    if not isinstance(item, dict):
        return None
    for key in ("shipmentId", "fulfillmentId", "orderId"):
        if key in item:
            return item[key]
    return None


def _get_ci(mapping: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in mapping.items() if k.lower() == lowered), None)
