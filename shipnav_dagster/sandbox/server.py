"""Run the emulators on loopback, each in a uvicorn server on its own thread.

Three servers: ShipStation V1 (the ``ssapi.shipstation.com`` paths), ShipStation V2 (the
``api.shipstation.com/v2/...`` paths) and NAV. The two ShipStation APIs are separate hosts in
reality, so they get separate ports here too; both serve the same world (one account).
"""

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import uvicorn
from starlette.applications import Starlette

from shipnav_dagster.sandbox.state import (
    PLATFORMS,
    SANDBOX_NAV_COMPANY,
    SANDBOX_NAV_INSTANCE,
    SANDBOX_NAV_TENANT,
    SandboxWorld,
)

if TYPE_CHECKING:
    from shipnav_dagster.sandbox.shipstation.v2.delivery import Delivery

SHIPSTATION_API_VERSIONS = ("v1", "v2")
NAV_AUTH_MODES = ("oauth2", "basic", "ntlm")


class ConnectionEvents(Protocol):
    def opened(self, key: Any) -> None: ...
    def closed(self, key: Any) -> None: ...


def connection_tracking_protocol(events: ConnectionEvents) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, reporting each TCP connection's opening and closing to ``events``.

    NTLM and Negotiate authenticate a connection, not a request: the NAV emulator keeps the login
    per peer address and must forget it when that connection ends (a new connection from the
    same client port starts unauthenticated, as on a real server).
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class ConnectionTrackingProtocol(AutoHTTPProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            events.opened(self.client)

        def connection_lost(self, exc: Exception | None) -> None:
            events.closed(self.client)
            super().connection_lost(exc)

    return ConnectionTrackingProtocol


def nav_service_root(base_url: str) -> str:
    company = quote(SANDBOX_NAV_COMPANY, safe="")
    return f"{base_url}/{SANDBOX_NAV_INSTANCE}/ODataV4/Company('{company}')"


class ThreadedServer:
    """One ASGI app under uvicorn on a daemon thread: ``with ThreadedServer(app) as url``."""

    def __init__(
        self,
        app: Starlette,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
        http: type[asyncio.Protocol] | str = "auto",
    ) -> None:
        self.host = host
        self.port = port
        config = uvicorn.Config(
            app, host=host, port=port, log_level=log_level, lifespan="off", access_log=False, http=http
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="shipnav-sandbox", daemon=True)

    def start(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server did not start (is the port free?)")
            time.sleep(0.01)
        sock: socket.socket = self.server.servers[0].sockets[0]
        self.port = int(sock.getsockname()[1])
        return self.port

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SandboxServers:
    """The emulators on 127.0.0.1. ``world`` can be swapped between tests without restarting.

    ``platform`` (``"nav2018"`` or ``"bc"``), when given, switches the world's NAV to that product
    (``NavState.apply_platform``): it is what ``shipnav sandbox --platform`` passes on.
    """

    def __init__(
        self,
        world: SandboxWorld,
        host: str = "127.0.0.1",
        shipstation_port: int = 0,
        nav_port: int = 0,
        shipstation_v2_port: int = 0,
        platform: str | None = None,
    ) -> None:
        from shipnav_dagster.sandbox.nav.app import create_app as create_nav_app
        from shipnav_dagster.sandbox.shipstation.v1 import create_app as create_shipstation_app
        from shipnav_dagster.sandbox.shipstation.v2.app import create_app as create_shipstation_v2_app

        if platform is not None:
            if platform not in PLATFORMS:
                raise ValueError(f"unknown NAV platform {platform!r}; expected one of {PLATFORMS}")
            with world.lock:
                world.nav.apply_platform(platform)
        self.host = host
        self.shipstation_app = create_shipstation_app(world)
        self.shipstation_v2_app = create_shipstation_v2_app(world)
        self.nav_app = create_nav_app(world)
        self._ss = ThreadedServer(self.shipstation_app, host, shipstation_port)
        self._ss2 = ThreadedServer(self.shipstation_v2_app, host, shipstation_v2_port)
        protocol = connection_tracking_protocol(self.nav_app.state.connections)
        self._nav = ThreadedServer(self.nav_app, host, nav_port, http=protocol)
        self.shipstation_port = 0
        self.shipstation_v2_port = 0
        self.nav_port = 0

    @property
    def world(self) -> SandboxWorld:
        return self.shipstation_app.state.world

    @world.setter
    def world(self, world: SandboxWorld) -> None:
        self.shipstation_app.state.world = world
        self.shipstation_v2_app.state.world = world
        self.nav_app.state.world = world

    def start(self) -> "SandboxServers":
        self.shipstation_port = self._ss.start()
        self.shipstation_v2_port = self._ss2.start()
        self.nav_port = self._nav.start()
        return self

    def stop(self) -> None:
        self._ss.stop()
        self._ss2.stop()
        self._nav.stop()

    @property
    def shipstation_url(self) -> str:
        """ShipStation V1 base URL (paths like ``/shipments`` hang directly off it)."""
        return f"http://{self.host}:{self.shipstation_port}"

    @property
    def shipstation_v2_url(self) -> str:
        """ShipStation V2 base URL, without ``/v2`` (every V2 path begins ``/v2/``)."""
        return f"http://{self.host}:{self.shipstation_v2_port}"

    def deliver_v2_webhooks(self, timeout: float = 5.0) -> "list[Delivery]":
        """Send the queued V2 webhook notifications (loopback receivers only); see ``delivery``."""
        from shipnav_dagster.sandbox.shipstation.v2.delivery import deliver_webhooks

        return deliver_webhooks(self.world, self.shipstation_v2_url, timeout=timeout)

    @property
    def nav_base_url(self) -> str:
        return f"http://{self.host}:{self.nav_port}"

    @property
    def nav_odata_url(self) -> str:
        return nav_service_root(self.nav_base_url)

    @property
    def nav_token_url(self) -> str:
        return f"{self.nav_base_url}/{SANDBOX_NAV_TENANT}/oauth2/v2.0/token"

    def env(self, nav_auth: str = "oauth2", shipstation_api_version: str = "v1") -> dict[str, str]:
        """The environment that points shipnav at these servers (sandbox credentials only).

        ``shipstation_api_version="v2"`` points it at the V2 server instead: the V2 key, no secret,
        ``SHIPSTATION_API_VERSION=v2`` and a base URL without ``/v2``. The V1 default adds no
        ``SHIPSTATION_API_VERSION``. ``nav_auth="ntlm"`` gives the world's Windows account
        (``DOMAIN\\user``); the NAV emulator asks for it only when ``world.nav.credential_type`` is
        ``"Windows"`` (``scenario.use_windows_auth``).
        """
        if shipstation_api_version not in SHIPSTATION_API_VERSIONS:
            raise ValueError(f"shipstation_api_version must be one of {SHIPSTATION_API_VERSIONS}")
        if nav_auth not in NAV_AUTH_MODES:
            raise ValueError(f"unknown NAV_AUTH {nav_auth!r}; expected one of {NAV_AUTH_MODES}")
        world = self.world
        if shipstation_api_version == "v2":
            shipstation = {
                "SHIPSTATION_API_VERSION": "v2",
                "SHIPSTATION_API_URL": self.shipstation_v2_url,
                "SHIPSTATION_API_KEY": world.shipstation.v2.api_key,
            }
        else:
            shipstation = {
                "SHIPSTATION_API_URL": self.shipstation_url,
                "SHIPSTATION_API_KEY": world.shipstation.api_key,
                "SHIPSTATION_API_SECRET": world.shipstation.api_secret,
            }
        env = {
            **shipstation,
            "NAV_ODATA_URL": self.nav_odata_url,
            "NAV_AUTH": nav_auth,
            "NAV_TRACKING_MAX_LENGTH": str(world.nav.tracking_max_length),
            # shipnav's NAV_PLATFORM: "nav" for NAV 2013-2018, "bc" for Business Central.
            "NAV_PLATFORM": "bc" if world.nav.platform == "bc" else "nav",
        }
        if nav_auth == "oauth2":
            env.update(
                NAV_TOKEN_URL=self.nav_token_url,
                NAV_CLIENT_ID=world.nav.client_id,
                NAV_CLIENT_SECRET=world.nav.client_secret,
                NAV_SCOPE="https://api.businesscentral.dynamics.com/.default",
            )
        elif nav_auth == "ntlm":
            env.update(NAV_USERNAME=world.nav.windows_username, NAV_PASSWORD=world.nav.windows_password)
        else:
            env.update(NAV_USERNAME=world.nav.username, NAV_PASSWORD=world.nav.password)
        return env


@contextmanager
def running_sandbox(world: SandboxWorld, **kwargs: object) -> Iterator[SandboxServers]:
    servers = SandboxServers(world, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield servers
    finally:
        servers.stop()
