"""HTTP for both ShipStation API generations: one request, its retries, its errors, its stats.

Each generation's client (``v1.client``, ``v2.client``) builds on :class:`ShipStationHttp` and adds
its authentication, its rate-limit pacing (the ``_pace`` / ``_note_response`` hooks), its
paging and its endpoints. What is the same for both lives here:

* 5xx, 429, timeouts and dropped connections are retried with tenacity (bounded, exponential with
  jitter); other 4xx are not, because repeating them cannot help;
* a 429 waits what the server says (``X-Rate-Limit-Reset`` on V1, ``Retry-After`` on V2, seconds
  or an HTTP date), bounded, and a minute when it says nothing;
* no error message carries a credential: errors name the method and the path (never the query
  or headers), and any server text quoted is redacted first.
"""

import email.utils
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from shipnav_dagster.shipstation.errors import (
    ShipStationAuthError,
    ShipStationError,
    ShipStationRateLimited,
    ShipStationRequestError,
    ShipStationServerError,
    ShipStationTransportError,
    describe_body,
    redact,
)

DEFAULT_429_WAIT = 60.0  # seconds, when a 429 says nothing about when to come back (what taps use)
USER_AGENT = "shipnav (+https://github.com/shipnav)"


@dataclass
class ClientStats:
    """What the client did: requests per endpoint and the last rate-limit facts seen."""

    requests: Counter[str] = field(default_factory=Counter)  # "GET /shipments" -> HTTP requests
    statuses: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    throttled: int = 0  # 429 answers received
    paced_seconds: float = 0.0  # time spent waiting for the rate-limit budget before requests
    null_items_skipped: int = 0
    limit: int | None = None  # requests per window, as reported (V1) or assumed (V2)
    remaining: int | None = None
    reset: int | None = None  # seconds until the window resets, as last reported
    reset_at: float | None = None  # monotonic time the window resets

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class _Retryable(Exception):
    """Internal: wraps a ShipStationError that deserves another attempt."""

    def __init__(self, error: ShipStationError, wait_hint: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait_hint = wait_hint


class ShipStationHttp:
    """One ShipStation API host: requests with retries, rate-limit hooks, JSON decoding.

    ``sleep`` is used for every wait (rate-limit pacing, 429 resets, retry back-off) so callers can
    observe or bound waits; it defaults to ``time.sleep``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        secrets: list[str],
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        reset_margin: float = 1.0,
        max_rate_wait: float = 120.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        self.stats = ClientStats()
        self._secrets = [s for s in secrets if s]
        self._sleep = sleep
        # Exponential with jitter so that several workers do not retry in lockstep.
        self._backoff = wait_exponential(multiplier=backoff_initial, max=backoff_max) + wait_random(
            0, backoff_initial
        )
        self._reset_margin = reset_margin
        self._max_rate_wait = max_rate_wait
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
        )

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what each generation supplies --------------------------------------------------------

    def _pace(self) -> None:
        """Wait, if need be, before a request so the rate limit is not overrun."""

    def _note_response(self, response: httpx.Response) -> None:
        """Learn from a response (rate-limit headers); called for every response."""

    def _auth_error(self, status: int, method: str, path: str) -> ShipStationError:
        return ShipStationAuthError(status=status, method=method, path=path)

    def _rate_limited(self, wait: float | None, method: str, path: str) -> ShipStationRateLimited:
        return ShipStationRateLimited(reset_seconds=wait, method=method, path=path)

    # -- one logical request --------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        allow_404: bool = False,
        endpoint: str | None = None,
    ) -> httpx.Response | None:
        """One logical request, retried as needed; None only for an allowed 404."""
        # Errors name the real path (never the query); stats group by endpoint template.
        path = urlsplit(url).path or "/"
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            retry=retry_if_exception(lambda exc: isinstance(exc, _Retryable)),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, path, endpoint or path, params, json, allow_404)
        except _Retryable as final:
            final.error.attempts = self.max_attempts
            raise final.error from None

    def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        endpoint: str,
        params: dict[str, str] | None,
        json: dict[str, Any] | None,
        allow_404: bool,
    ) -> httpx.Response | None:
        self._pace()
        self.stats.requests[f"{method} {endpoint}"] += 1
        try:
            response = self._http.request(method, url, params=params, json=json)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, method, path) from None
        self._note_response(response)
        self.stats.statuses[response.status_code] += 1
        if response.is_success:
            return response
        if response.status_code == 404 and allow_404:
            return None
        raise self._status_error(response, method, path)

    def _transport_error(self, exc: httpx.TransportError, method: str, path: str) -> Exception:
        detail = redact(f"{type(exc).__name__}: {exc}", self._secrets)[:300]
        error = ShipStationTransportError(
            f"no usable response from ShipStation ({detail})", method=method, path=path
        )
        # A write whose request may have reached the server is not repeated (a webhook could be
        # subscribed twice); only connection setup failures are safe to retry for it.
        if method == "GET" or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return _Retryable(error)
        return error

    def _status_error(self, response: httpx.Response, method: str, path: str) -> Exception:
        status = response.status_code
        if status in (401, 403):
            return self._auth_error(status, method, path)
        detail = self._detail(response)
        if status == 429:
            self.stats.throttled += 1
            wait = _seconds(response.headers.get("X-Rate-Limit-Reset"))
            if wait is None:
                wait = _retry_after(response.headers.get("Retry-After"))
            error = self._rate_limited(wait, method, path)
            return _Retryable(error, wait_hint=DEFAULT_429_WAIT if wait is None else wait)
        if status >= 500:
            return _Retryable(ShipStationServerError(status=status, detail=detail, method=method, path=path))
        message = (
            f"ShipStation rejected the request: {detail}" if detail else "ShipStation rejected the request"
        )
        return ShipStationRequestError(message, status=status, method=method, path=path)

    def _detail(self, response: httpx.Response) -> str:
        return redact(describe_body(response.text, response.headers.get("content-type", "")), self._secrets)

    def _wait(self, state: RetryCallState) -> float:
        """429: the server's reset (+ margin, bounded); anything else: exponential with jitter."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.wait_hint is not None:
            return min(exc.wait_hint + self._reset_margin, self._max_rate_wait)
        return float(self._backoff(state))

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1

    # -- decoding ------------------------------------------------------------------------------

    def _json(self, response: httpx.Response, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ShipStationError(
                f"ShipStation answered with something that is not JSON: {self._detail(response)}",
                status=response.status_code,
                method=response.request.method,
                path=path,
            ) from None

    def _json_object(self, response: httpx.Response, path: str) -> dict[str, Any]:
        body = self._json(response, path)
        if not isinstance(body, dict):
            raise ShipStationError(
                "unexpected ShipStation response: not a JSON object",
                status=response.status_code,
                method=response.request.method,
                path=path,
            )
        return body

    def _without_nulls(self, items: list[Any]) -> list[Any]:
        """ShipStation has been seen sending ``null`` list entries: they carry nothing and are
        counted and skipped. Anything else, even a malformed entry, goes on to the parser, which
        records it as invalid rather than losing it."""
        kept = [item for item in items if item is not None]
        self.stats.null_items_skipped += len(items) - len(kept)
        return kept


def int_or_none(value: object) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        try:
            return int(float(str(value).strip()))
        except ValueError:
            return None


def _seconds(value: str | None) -> float | None:
    number = int_or_none(value)
    return None if number is None else float(max(number, 0))


def _retry_after(value: str | None) -> float | None:
    """``Retry-After``: delay-seconds, or an HTTP date (RFC 9110 §10.2.3)."""
    seconds = _seconds(value)
    if seconds is not None or not value:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
