"""Authentication for NAV / Business Central OData: OAuth 2.0 client credentials and Basic.

Both are ``httpx.Auth`` flows, so one thread-safe ``httpx.Client`` can carry either.

OAuth (BC online and on-prem with Entra, reference/nav.md §4): the token is fetched once, shared
by every thread, and reused until shortly before ``expires_in``. A 401 from NAV means the token
is no longer good (expired early, revoked): the flow drops it, fetches a new one once and
repeats the request once. If NAV still answers 401, the final response reaches the caller, who
reports that the credentials were rejected twice.

Basic covers NAV's NavUserPassword credential type (user name plus password or web-service
access key). Neither class ever puts a secret into a message or a repr.
"""

import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import httpx

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
