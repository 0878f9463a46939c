"""Authentication for NAV / Business Central OData: OAuth 2.0 client credentials, Basic, and
Windows (NTLM / Negotiate).

All are ``httpx.Auth`` flows, so one thread-safe ``httpx.Client`` can carry any of them.

OAuth (BC online and on-prem with Entra): the token is fetched once, shared
by every thread, and reused until shortly before ``expires_in``. A 401 from NAV means the token
is no longer good (expired early, revoked): the flow drops it, fetches a new one once and
repeats the request once. If NAV still answers 401, the final response reaches the caller, who
reports that the credentials were rejected twice.

Basic covers NAV's NavUserPassword credential type (user name plus password or web-service
access key). NtlmAuth covers the Windows credential type, the default of NAV 2013-2018 and BC
on-premises servers. No class ever puts a secret into a message or a repr.
"""

import base64
import binascii
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import httpx
import spnego
import spnego.exceptions

from shipnav_dagster.nav.errors import NavAuthError, NavUnavailableError, retry_after_seconds

SETTINGS_HINT = "check NAV_TOKEN_URL, NAV_CLIENT_ID, NAV_CLIENT_SECRET and NAV_SCOPE"


class OAuth2ClientCredentials(httpx.Auth):
    """Client-credentials bearer tokens with a shared, thread-safe cache."""

    requires_response_body = False

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        early_seconds: float = 60.0,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self._clock = clock
        self._early_seconds = early_seconds
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._valid_until = 0.0
        self.fetch_count = 0  # how many tokens were requested (tests, `shipnav check`)

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r})"

    # -- the cache ----------------------------------------------------------------------------

    def token(self) -> str:
        """A valid access token: the cached one, or a new one (one fetch for all threads)."""
        with self._lock:
            if self._token is not None and self._clock() < self._valid_until:
                return self._token
            token, expires_in = self._fetch()
            # Refresh before NAV would reject it: 60 s early, or 10 % of a short lifetime.
            margin = min(self._early_seconds, expires_in * 0.1)
            self._token, self._valid_until = token, self._clock() + max(0.0, expires_in - margin)
            return token

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is still ``token``, when given: another thread may
        already have replaced the rejected token with a fresh one)."""
        with self._lock:
            if token is None or token == self._token:
                self._token, self._valid_until = None, 0.0

    def close(self) -> None:
        self._http.close()

    # -- httpx flow ---------------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self.invalidate(token)
            request.headers["Authorization"] = f"Bearer {self.token()}"
            yield request

    # -- the token endpoint -------------------------------------------------------------------

    def _fetch(self) -> tuple[str, float]:
        data = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._secret,
            "scope": self.scope,
        }
        self.fetch_count += 1
        try:
            response = self._http.post(self.token_url, data=data, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            # Transient like any NAV outage: the NAV client retries it with backoff.
            raise NavUnavailableError(
                0, "TokenEndpointUnreachable", f"no answer from NAV_TOKEN_URL={self.token_url}: {exc}"
            ) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise NavUnavailableError(
                response.status_code,
                "TokenEndpointUnavailable",
                f"the OAuth token endpoint (NAV_TOKEN_URL={self.token_url}) answered {response.status_code}",
                retry_after=retry_after_seconds(response),
            )
        payload = _json_or_empty(response)
        token = payload.get("access_token")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise self._token_error(response, payload)
        try:
            expires_in = float(payload.get("expires_in", 3599))
        except (TypeError, ValueError):
            expires_in = 3599.0
        return token, expires_in

    def _token_error(self, response: httpx.Response, payload: dict[str, Any]) -> NavAuthError:
        error = str(payload.get("error") or f"HTTP{response.status_code}")
        description = str(payload.get("error_description") or response.reason_phrase or "")
        description = description.replace(self._secret, "***") if self._secret else description
        description = " ".join(description.split())[:300]
        return NavAuthError(
            response.status_code,
            error,
            f"could not get an OAuth token from NAV_TOKEN_URL={self.token_url} for "
            f"NAV_CLIENT_ID={self.client_id}: {description} ({SETTINGS_HINT})",
        )


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


class BasicAuth(httpx.BasicAuth):
    """HTTP Basic for NavUserPassword (user name plus password or web-service access key)."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(username, password)
        self.username = username

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r})"

    def invalidate(self, token: str | None = None) -> None:
        """Nothing to refresh: a rejected password stays rejected."""

    def close(self) -> None:
        """Nothing to release."""


# --- Windows credentials: NTLM / Negotiate -----------------------------------------------------

# The request extension that names the connection lease of an NTLM handshake (see PinnedTransport).
LEASE_EXTENSION = "shipnav.ntlm_lease"
NTLM_SETTINGS_HINT = "check NAV_USERNAME (DOMAIN\\user) and NAV_PASSWORD"


class _Lease:
    """One single-connection transport, held by one request (and its handshake) at a time."""

    def __init__(self, transport: httpx.HTTPTransport) -> None:
        self.transport = transport


class PinnedTransport(httpx.BaseTransport):
    """A pool of single-connection HTTP transports, leased to one request at a time.

    NTLM and Negotiate authenticate the TCP connection, not the request: the three legs of a
    handshake must travel over the same connection, and a connection another request is in the
    middle of authenticating must not be lent out. An ordinary connection pool guarantees
    neither, so each request (all legs of its handshake) leases one of ``connections``
    keep-alive connections for its whole auth flow. Once authenticated, a connection stays so
    and later requests on it need no handshake.
    """

    def __init__(self, connections: int = 4, *, pool_timeout: float | None = 30.0, **kwargs: Any) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._leases = [_Lease(httpx.HTTPTransport(limits=limits, **kwargs)) for _ in range(connections)]
        self._free: queue.LifoQueue[_Lease] = queue.LifoQueue()
        for lease in self._leases:
            self._free.put(lease)
        self._pool_timeout = pool_timeout

    def acquire(self) -> _Lease:
        try:
            return self._free.get(timeout=self._pool_timeout)
        except queue.Empty:
            raise httpx.PoolTimeout("no NAV connection became free for the NTLM handshake") from None

    def release(self, lease: _Lease) -> None:
        self._free.put(lease)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        lease = request.extensions.get(LEASE_EXTENSION)
        if isinstance(lease, _Lease):
            request.extensions = {k: v for k, v in request.extensions.items() if k != LEASE_EXTENSION}
            return lease.transport.handle_request(request)
        lease = self.acquire()  # a request sent without NtlmAuth: any free connection
        try:
            return lease.transport.handle_request(request)
        finally:
            self.release(lease)

    def close(self) -> None:
        for lease in self._leases:
            lease.transport.close()


class NtlmAuth(httpx.Auth):
    """Windows credentials for NAV / BC on-premises: the HTTP NTLM or Negotiate handshake.

    A request goes out without credentials first (a connection authenticated earlier needs none).
    On ``401`` with ``WWW-Authenticate: NTLM`` or ``Negotiate`` it runs the handshake on the same
    connection: NEGOTIATE_MESSAGE, the server's CHALLENGE_MESSAGE in the next 401, then the
    AUTHENTICATE_MESSAGE with the request itself (RFC 4559; MS-NTHT). NTLM is preferred when the
    server offers both; Negotiate (SPNEGO) is used otherwise (NAV Server's default unless
    ServicesUseNTLMAuthentication is true), with NTLM inside it when no Kerberos is available.
    If the server still answers 401 (wrong password, unknown user), that response reaches the
    caller. The tokens come from pyspnego; the password never appears in a message or a repr.

    Use it with the connection-pinning ``transport`` (``NavClient.from_settings`` does), so the
    legs of one handshake share a connection however many threads send requests.
    """

    requires_response_body = True  # 401 bodies are read, so the connection can carry the next leg

    def __init__(
        self, username: str, password: str, *, connections: int = 4, service: str = "HTTP", **transport: Any
    ) -> None:
        # pyspnego logs every handshake token at DEBUG; the last one carries a NetNTLMv2 response
        # that can be cracked offline, so that logger never goes below INFO.
        spnego_log = logging.getLogger("spnego")
        if spnego_log.getEffectiveLevel() < logging.INFO:
            spnego_log.setLevel(logging.INFO)
        self.username = username
        self._password = password
        self._service = service
        self.transport = PinnedTransport(connections, **transport)
        self.handshakes = 0  # completed-or-attempted handshakes (tests, `shipnav check`)
        self._count_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NtlmAuth(username={self.username!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        lease = self.transport.acquire()
        try:
            yield from self._flow(request, lease)
        finally:
            self.transport.release(lease)

    def _flow(self, request: httpx.Request, lease: _Lease) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.pop("Authorization", None)
        response = yield _leased(request, lease)
        scheme = _offered_scheme(response)
        if response.status_code != 401 or scheme is None:
            return
        with self._count_lock:
            self.handshakes += 1
        context = spnego.client(
            self.username,
            self._password,
            hostname=request.url.host,
            service=self._service,
            protocol="ntlm" if scheme == "NTLM" else "negotiate",
        )
        request.headers["Authorization"] = f"{scheme} {_b64(_token(context.step()))}"
        response = yield _leased(request, lease)
        challenge = _server_token(response, scheme)
        if response.status_code != 401 or challenge is None:
            return
        try:
            answer = context.step(challenge)
        except spnego.exceptions.SpnegoError as exc:
            raise NavAuthError(401, "NtlmHandshakeFailed", f"{exc} ({NTLM_SETTINGS_HINT})") from None
        request.headers["Authorization"] = f"{scheme} {_b64(answer or b'')}"
        response = yield _leased(request, lease)
        final = _server_token(response, scheme)
        if final is not None and not context.complete:
            with contextlib.suppress(spnego.exceptions.SpnegoError):
                context.step(final)  # Negotiate's mutual-authentication token, when sent

    def invalidate(self, token: str | None = None) -> None:
        """Nothing to refresh: a rejected password stays rejected."""

    def close(self) -> None:
        self.transport.close()


def _leased(request: httpx.Request, lease: _Lease) -> httpx.Request:
    request.extensions = {**request.extensions, LEASE_EXTENSION: lease}
    return request


def _challenges(response: httpx.Response) -> list[tuple[str, str]]:
    """(scheme, token-or-empty) of every WWW-Authenticate challenge (one or several headers)."""
    found = []
    for header in response.headers.get_list("www-authenticate"):
        for part in header.split(","):
            scheme, _, value = part.strip().partition(" ")
            if scheme:
                found.append((scheme, value.strip()))
    return found


def _offered_scheme(response: httpx.Response) -> str | None:
    offered = {scheme.lower() for scheme, _ in _challenges(response)}
    if "ntlm" in offered:
        return "NTLM"
    if "negotiate" in offered:
        return "Negotiate"
    return None


def _server_token(response: httpx.Response, scheme: str) -> bytes | None:
    for offered, value in _challenges(response):
        if offered.lower() == scheme.lower() and value:
            try:
                return base64.b64decode(value, validate=True)
            except (ValueError, binascii.Error):
                return None
    return None


def _b64(token: bytes) -> str:
    return base64.b64encode(token).decode("ascii")


def _token(step: bytes | None) -> bytes:
    """An NTLM/Negotiate context always answers with a token until it is complete."""
    if step is None:
        raise NavAuthError(401, "NtlmHandshake", "the NTLM handshake produced no token")
    return step


def credentials_hint(auth: httpx.Auth) -> str:
    """What to check when NAV answers 401 although the client sent its credentials."""
    if isinstance(auth, OAuth2ClientCredentials):
        return (
            "NAV rejected the credentials twice (a fresh OAuth token was refused too); check "
            "NAV_CLIENT_ID/NAV_CLIENT_SECRET/NAV_SCOPE and that the app is registered in Business "
            "Central (Microsoft Entra Applications) with permissions"
        )
    if isinstance(auth, NtlmAuth):
        return (
            "NAV rejected the Windows credentials (NTLM/Negotiate); check NAV_USERNAME (DOMAIN\\user) "
            "and NAV_PASSWORD, and that the user is set up in NAV with permissions"
        )
    return "NAV rejected the Basic credentials; check NAV_USERNAME/NAV_PASSWORD (or the web service key)"
