"""Windows credentials (NTLM / Negotiate) for the NAV emulator, bound to the TCP connection.

A NAV or Business Central on-premises server whose credential type is Windows authenticates web
service calls with HTTP Negotiate (SPNEGO) or, when ``ServicesUseNTLMAuthentication`` is true,
NTLM only (https://learn.microsoft.com/previous-versions/dynamicsnav-2018-developer/Users-and-Credential-Types).
Both are connection-oriented handshakes (RFC 4559; MS-NTHT):

1. a request without credentials is answered ``401`` with ``WWW-Authenticate: Negotiate`` (or
   ``NTLM``);
2. the client repeats it on the same connection with ``Authorization: <scheme> <NEGOTIATE_MESSAGE>``
   and gets ``401`` with ``WWW-Authenticate: <scheme> <CHALLENGE_MESSAGE>``;
3. it repeats it once more with the ``AUTHENTICATE_MESSAGE``; the server verifies it and serves
   the request. From then on the connection is authenticated: later requests on it need no
   Authorization header. A new connection starts over; a wrong password gets ``401`` again.

The acceptor is pyspnego's pure-Python NTLM server, which checks the client's answer against a
credentials file named by the ``NTLM_USER_FILE`` environment variable (``DOMAIN:USER:PASSWORD``
lines); this module writes the world's Windows account to such a file and points the variable at
it. Per-connection state is keyed by the peer address (``scope["client"]``); the server's
connection hooks (``ConnectionTable.opened``/``closed``) drop it when a connection opens or
closes, so a reused client port never inherits another connection's login.
"""

import atexit
import base64
import binascii
import contextlib
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

import spnego
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipnav_dagster.sandbox.state import WINDOWS, NavState, SandboxWorld

USER_SCOPE_KEY = "shipnav.windows_user"  # set in the ASGI scope of an authenticated request


@dataclass
class _Connection:
    context: Any = None  # a pending pyspnego acceptor between the 2nd and 3rd leg
    scheme: str = ""
    user: str | None = None  # set once the handshake completed


class ConnectionTable:
    """NTLM/Negotiate state per client connection (peer address), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: dict[Any, _Connection] = {}

    def get(self, key: Any) -> _Connection:
        with self._lock:
            return self._connections.setdefault(key, _Connection())

    def forget(self, key: Any) -> None:
        with self._lock:
            self._connections.pop(key, None)

    # Called by the server's protocol when a TCP connection opens or closes.
    opened = forget
    closed = forget

    def __len__(self) -> int:
        with self._lock:
            return len(self._connections)


class _CredentialFile:
    """The acceptor's NTLM_USER_FILE, rewritten when the world's Windows account changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: tuple[str, str] | None = None
        self._path: str | None = None

    def ensure(self, username: str, password: str) -> None:
        with self._lock:
            if self._path is None:
                handle, self._path = tempfile.mkstemp(prefix="shipnav-sandbox-ntlm-", suffix=".txt")
                os.close(handle)
                atexit.register(_remove, self._path)
            if self._written != (username, password):
                domain, _, user = username.rpartition("\\")
                staged = self._path + ".new"
                with open(staged, "w", encoding="utf-8") as out:
                    os.chmod(staged, 0o600)
                    out.write(f"{domain}:{user}:{password}\n")
                os.replace(staged, self._path)
                self._written = (username, password)
            os.environ["NTLM_USER_FILE"] = self._path


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


CREDENTIALS = _CredentialFile()


def challenge_scheme(nav: NavState) -> str:
    return "NTLM" if nav.services_use_ntlm_authentication else "Negotiate"


class WindowsAuthMiddleware:
    """Requires a completed NTLM/Negotiate handshake per connection when the world's NAV uses
    the Windows credential type; passes everything through otherwise."""

    def __init__(self, app: ASGIApp, connections: ConnectionTable | None = None) -> None:
        self.app = app
        self.connections = connections if connections is not None else ConnectionTable()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "/odatav4" not in scope["path"].lower():
            await self.app(scope, receive, send)
            return
        world: SandboxWorld = scope["app"].state.world
        nav = world.nav
        if nav.credential_type != WINDOWS:
            await self.app(scope, receive, send)
            return
        key = scope.get("client") or ("?", 0)
        state = self.connections.get(key)
        scheme = challenge_scheme(nav)
        token = _token(_header(scope, b"authorization"), scheme)
        if token is None:
            if state.user is not None:
                await self.app({**scope, USER_SCOPE_KEY: state.user}, receive, send)
            else:
                await _refuse(receive, send, scheme)
            return
        CREDENTIALS.ensure(nav.windows_username, nav.windows_password)
        final = self._step(state, scheme, token)
        if state.user is None:
            await _refuse(receive, send, scheme, final)
            return
        # Negotiate may return a last token (mutual authentication) with the real answer.
        extra = [(b"www-authenticate", f"{scheme} {_b64(final)}".encode())] if final else []
        await self.app({**scope, USER_SCOPE_KEY: state.user}, receive, _with_headers(send, extra))

    @staticmethod
    def _step(state: _Connection, scheme: str, token: bytes) -> bytes | None:
        """Feed one client token to the connection's acceptor; the token to send back, if any."""
        if _is_negotiate_message(token) or state.context is None or state.scheme != scheme:
            state.context = spnego.server(protocol="ntlm" if scheme == "NTLM" else "negotiate")
            state.scheme, state.user = scheme, None
        try:
            answer = state.context.step(token)
        except Exception:  # a wrong password, an unknown user or a malformed token: refused
            state.context, state.user = None, None
            return None
        if state.context.complete:
            state.user = str(state.context.client_principal or "")
            state.context = None
        return answer


def _is_negotiate_message(token: bytes) -> bool:
    """An NTLM NEGOTIATE_MESSAGE (type 1) or an SPNEGO NegTokenInit: a handshake (re)starts."""
    if token.startswith(b"NTLMSSP\x00"):
        return token[8:12] == b"\x01\x00\x00\x00"
    return token[:1] == b"\x60"  # [APPLICATION 0] GSS-API initial context token


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _token(header: str, scheme: str) -> bytes | None:
    offered, _, value = header.strip().partition(" ")
    if offered.lower() != scheme.lower() or not value.strip():
        return None
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (ValueError, binascii.Error):
        return None


def _b64(token: bytes) -> str:
    return base64.b64encode(token).decode("ascii")


async def _refuse(receive: Receive, send: Send, scheme: str, token: bytes | None = None) -> None:
    """401 with the challenge; the request body is read first so the connection stays usable.

    The challenge comes from the HTTP listener before NAV's OData code runs, so it carries no
    OData error body.
    """
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False) and message["type"] == "http.request"
    challenge = f"{scheme} {_b64(token)}" if token else scheme
    headers = [
        (b"www-authenticate", challenge.encode("ascii")),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    if not extra:
        return send

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending
