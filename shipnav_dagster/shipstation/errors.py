"""Errors of the ShipStation client, worded for an operator.

No message ever contains the API key, the API secret or the Authorization header: errors carry the
method and the request *path* (never the query string or headers), and any server text quoted in
a message is passed through :func:`redact` by the client first.
"""

import html
import json
import re

MAX_DETAIL_CHARS = 300

_TAG = re.compile(r"<[^>]+>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1>", re.IGNORECASE | re.DOTALL)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


class ShipStationError(Exception):
    """Any failure talking to ShipStation."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.attempts = attempts

    def __str__(self) -> str:
        where = " ".join(part for part in (self.method, self.path) if part)
        facts = [where] if where else []
        if self.status is not None:
            facts.append(f"HTTP {self.status}")
        if self.attempts > 1:
            facts.append(f"after {self.attempts} attempts")
        return f"{self.message} ({', '.join(facts)})" if facts else self.message


V1_AUTH_MESSAGE = (
    "ShipStation rejected the credentials: check SHIPSTATION_API_KEY / SHIPSTATION_API_SECRET "
    "(a V1 API key + secret pair from Settings > API Settings; a V2 API key does not work with V1: "
    "for one, set SHIPSTATION_API_VERSION=v2)"
)
V2_AUTH_MESSAGE = (
    "ShipStation rejected the API key: check SHIPSTATION_API_KEY (a V2 API key from Settings > "
    "API Settings, sent in the API-Key header; a V1 key + secret pair does not work with V2: for "
    "one, set SHIPSTATION_API_VERSION=v1 and SHIPSTATION_API_SECRET)"
)


class ShipStationAuthError(ShipStationError):
    """401/403: the credentials are wrong, revoked, of the other API generation, or lack permission."""

    def __init__(
        self,
        *,
        status: int,
        method: str | None = None,
        path: str | None = None,
        message: str = V1_AUTH_MESSAGE,
    ) -> None:
        super().__init__(message, status=status, method=method, path=path)


class ShipStationRateLimited(ShipStationError):
    """429 Too Many Requests, still answered after the retries."""

    def __init__(
        self,
        message: str = "ShipStation rate limit exceeded (40 requests per minute per API key)",
        *,
        reset_seconds: float | None = None,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, status=429, method=method, path=path, attempts=attempts)
        self.reset_seconds = reset_seconds


class ShipStationServerError(ShipStationError):
    """5xx from ShipStation (or a gateway in front of it), still failing after the retries."""

    def __init__(
        self,
        *,
        status: int,
        detail: str = "",
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
    ) -> None:
        text = f"ShipStation server error: {detail}" if detail else "ShipStation server error"
        super().__init__(text, status=status, method=method, path=path, attempts=attempts)
        self.detail = detail


class ShipStationRequestError(ShipStationError):
    """A 4xx other than 401/403/429: the request itself was rejected; retrying will not help."""


class ShipStationTransportError(ShipStationError):
    """No usable HTTP response: timeout, refused or dropped connection, protocol error."""


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret occurring in ``text`` (servers sometimes echo what they were sent)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def describe_body(body: str, content_type: str = "") -> str:
    """A short human-readable detail of an error body.

    ShipStation V1 500s are ASP.NET Web API JSON (``ExceptionMessage`` is the useful part), newer
    errors are ``{"message": ...}``, V2 errors ``{"request_id", "errors": [...]}``, and gateways in
    front of either answer with HTML pages.
    """
    text = body.strip()
    if not text:
        return ""
    parsed = _json_or_none(text)
    if isinstance(parsed, dict):
        return _truncate(_describe_json(parsed) or text)
    if "html" in content_type.lower() or text.startswith("<"):
        return _truncate(_describe_html(text))
    return _truncate(text)


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _describe_json(body: dict[str, object]) -> str:
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        return _describe_v2_errors(errors, body.get("request_id"))
    lowered = {str(key).lower(): value for key, value in body.items()}
    exception = lowered.get("exceptionmessage")
    message = lowered.get("message")
    kind = lowered.get("exceptiontype")
    parts = []
    if isinstance(exception, str) and exception:
        parts.append(exception)
        if isinstance(kind, str) and kind:
            parts.append(f"[{kind}]")
    elif isinstance(message, str) and message:
        parts.append(message)
    return " ".join(parts)


def _describe_v2_errors(errors: list[object], request_id: object) -> str:
    """The V2 error body ``{request_id, errors: [{error_source, error_type, error_code, message}]}``
    (the spec's error_response_body): each message with its code, and the request id ShipStation
    support asks for."""
    parts = []
    for error in errors[:3]:
        if not isinstance(error, dict):
            continue
        message, code = error.get("message"), error.get("error_code")
        text = str(message) if message else ""
        if code:
            text = f"{text} [{code}]".strip()
        if text:
            parts.append(text)
    described = "; ".join(parts)
    if described and isinstance(request_id, str) and request_id:
        described += f" (request_id {request_id})"
    return described


def _describe_html(text: str) -> str:
    title = _TITLE.search(text)
    stripped = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", _SCRIPT.sub(" ", text)))).strip()
    if title:
        heading = _SPACE.sub(" ", html.unescape(title.group(1))).strip()
        rest = stripped.replace(heading, "", 1).strip() if heading else stripped
        return f"{heading}: {rest}" if rest else heading
    return stripped


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"
