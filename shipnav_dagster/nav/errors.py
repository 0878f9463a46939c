"""NAV / Business Central OData errors, classified the way the write-back has to react to them.

NAV answers `{"error":{"code":"<Category_Detail>","message":"<text>  CorrelationId:  <guid>."}}`
(learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/dynamics-error-codes).
Branch on the HTTP status first and on the code second; keep the correlation id so an operator
can quote it to the NAV administrator. Messages never carry an
Authorization header, a token or a password: they are built from the response body only.
"""

import base64
import contextlib
import json
import re
from typing import Any

import httpx

_CORRELATION = re.compile(r"\s*CorrelationId:\s*([0-9A-Fa-f-]{8,})\.?\s*$")
_MAX_TEXT = 500


class NavError(Exception):
    """An error answer from NAV (or a failure to get one)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        correlation_id: str | None = None,
        *,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.correlation_id = correlation_id
        self.method = method
        self.url = url
        super().__init__(self._text())

    def _text(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        status = f"HTTP {self.status} " if self.status else ""
        cid = f" [CorrelationId {self.correlation_id}]" if self.correlation_id else ""
        return f"NAV {status}{self.code}: {self.message}{cid}{where}"


class NavConflictError(NavError):
    """409 `Request_EntityChanged` or 412: the ETag is stale; re-read and decide again."""


class NavAuthError(NavError):
    """The credentials or the token endpoint failed; the message names the settings to check."""


class NavNotFoundError(NavError):
    """404: the record (or the published service) does not exist."""


class NavThrottledError(NavError):
    """429: too many requests; ``retry_after`` is the server's advice in seconds, if any."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class NavUnavailableError(NavError):
    """408/500/502/503/504 or a transport failure (timeout, dropped connection): transient, retried
    with backoff; raised to the caller once the attempts are used up. ``status`` 0 = no answer."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class NavValidationError(NavError):
    """400 from NAV's business logic (`Application_*`, `Internal_InvalidTableRelation`): the value
    is not acceptable for this record. The caller records the reason and parks the record."""


def _collapse(text: str) -> str:
    return " ".join(text.split())[:_MAX_TEXT]


def parse_error_body(text: str) -> tuple[str | None, str | None, str | None]:
    """(code, message without the correlation suffix, correlation id) of an OData error body."""
    try:
        body = json.loads(text)
    except ValueError:
        return None, None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    code = str(error.get("code") or "") or None
    message = str(error.get("message") or "")
    match = _CORRELATION.search(message)
    correlation = match.group(1) if match else None
    if match:
        message = message[: match.start()]
    return code, _collapse(message) or None, correlation


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds (the delta form; an HTTP date is treated as absent)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


def is_outage(exc: BaseException) -> bool:
    """True when NAV as a whole could not be used (down, timing out, throttling us, refusing our
    credentials): no record's fault, so no record's backoff grows; the next run that reaches NAV
    takes the work again. Everything else NAV answers about one record is permanent for it
    (refused value, read-only field, validation) and is parked with NAV's message; a stale ETag
    (409/412) is neither: the caller re-reads and decides again."""
    if isinstance(exc, httpx.TransportError | NavUnavailableError | NavThrottledError | NavAuthError):
        return True
    return isinstance(exc, NavError) and exc.status in (0, 408, 429, 500, 502, 503, 504)


def is_read_only(exc: NavError) -> bool:
    """NAV refused to write a control the page shows read-only: Business Central's page 130 does
    this for the shipping fields of a posted shipment, ``400 BadRequest_InvalidOperation``
    "Control 'Package Tracking No.' is read-only" (dynamics-error-codes). The wording is matched
    loosely: any invalid-operation refusal, or a message saying the field cannot be edited."""
    if exc.status != 400:
        return False
    text = exc.message.lower()
    return exc.code == "BadRequest_InvalidOperation" or any(
        words in text for words in ("read-only", "read only", "not editable", "cannot be edited")
    )


def describe(exc: NavError) -> str:
    """NAV's code, message and correlation id, for a parked record's reason."""
    cid = f" (CorrelationId {exc.correlation_id})" if exc.correlation_id else ""
    return f"{exc.code}: {exc.message}{cid}"


def _class_for(status: int, code: str) -> type[NavError]:
    if status in (401, 403) or code.startswith("Authentication_"):
        return NavAuthError
    if status == 412 or (status == 409 and code == "Request_EntityChanged"):
        return NavConflictError
    if status == 404 or code == "Internal_RecordNotFound":
        return NavNotFoundError
    if status == 429:
        return NavThrottledError
    if status in (408, 500, 502, 503, 504):
        return NavUnavailableError
    if status == 400 and (code.startswith("Application_") or code == "Internal_InvalidTableRelation"):
        return NavValidationError
    return NavError


def error_from_response(response: httpx.Response) -> NavError:
    """Build the right NavError subclass from an error response (JSON or not)."""
    status = response.status_code
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        text = ""
    code, message, correlation = parse_error_body(text)
    if code is None:
        code = f"HTTP{status}"
        message = _collapse(text) or response.reason_phrase or "no error body"
    # Proxies and gateways have been known to echo the request: its credentials must not reach
    # the exception, which ends up in the Dagster event log.
    message = _without_credentials(message or "", response)
    correlation = (
        correlation or response.headers.get("ms-correlation-x") or response.headers.get("request-id")
    )
    cls = _class_for(status, code)
    kwargs: dict[str, Any] = {}
    with contextlib.suppress(RuntimeError):  # a response built without a request (tests)
        kwargs.update(method=response.request.method, url=_safe_url(response.request.url))
    if cls in (NavThrottledError, NavUnavailableError):
        kwargs["retry_after"] = retry_after_seconds(response)
    return cls(status, code, message or "", correlation, **kwargs)


def _without_credentials(text: str, response: httpx.Response) -> str:
    try:
        header = response.request.headers.get("Authorization") or ""
    except RuntimeError:  # a response built without a request (tests)
        return text
    scheme, _, credential = header.partition(" ")
    secrets = [header, credential]
    if scheme.lower() == "basic":
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            pair = base64.b64decode(credential).decode()
            secrets += [pair, pair.partition(":")[2]]
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _safe_url(url: httpx.URL) -> str:
    """The URL without user info (never echo credentials), query shortened for readability."""
    text = str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)
    return text if len(text) <= 300 else text[:297] + "..."
