"""Windows credentials end to end: the product's NavClient (NAV_AUTH=ntlm) against the NAV
emulator's NTLM/Negotiate acceptor, over real connections."""

import base64
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest

from shipnav_dagster.nav.auth import NtlmAuth
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.errors import NavAuthError
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.settings import Settings, load_settings


@pytest.fixture
def world(empty_world: SandboxWorld) -> SandboxWorld:
    sc.install_shipping_agents(empty_world)
    for n in range(8):
        sc.add_nav_order(
            empty_world,
            f"SO-{n}",
            customer_name=f"Customer {n}",
            order_date=date(2026, 3, 10),
            lines=[("CAP-5P-OLV", 1)],
        )
    sc.use_windows_auth(empty_world)
    return empty_world


def ntlm_settings(sandbox: SandboxServers, **changes: str) -> Settings:
    env = {k.lower(): v for k, v in sandbox.env(nav_auth="ntlm").items()}
    env.update(changes)
    return load_settings(**env)


def unauthorized_legs(world: SandboxWorld) -> int:
    return sum(1 for _m, _p, _q, status in world.nav.log.entries if status == 401)


def wait_for(condition: "callable[[], bool]", timeout: float = 5.0) -> bool:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def client(sandbox: SandboxServers, world: SandboxWorld) -> Iterator[NavClient]:
    with NavClient.from_settings(ntlm_settings(sandbox)) as nav:
        yield nav


def test_environment_for_ntlm(sandbox: SandboxServers, world: SandboxWorld) -> None:
    env = sandbox.env(nav_auth="ntlm")
    assert env["NAV_AUTH"] == "ntlm" and env["NAV_USERNAME"] == "SANDBOX\\navuser"
    assert env["NAV_PASSWORD"] == world.nav.windows_password
    settings = ntlm_settings(sandbox)
    assert settings.nav_auth == "ntlm" and settings.missing_for_nav() == []
    assert ntlm_settings(sandbox, nav_password="").missing_for_nav() == ["NAV_PASSWORD"]


def test_the_server_challenges_and_refuses_other_credentials(
    sandbox: SandboxServers, world: SandboxWorld
) -> None:
    url = sandbox.nav_odata_url + "/SalesOrder"
    bare = httpx.get(url)
    assert bare.status_code == 401 and bare.headers.get_list("www-authenticate") == ["Negotiate"]
    basic = httpx.get(url, auth=(world.nav.username, world.nav.password))
    assert basic.status_code == 401
    world.nav.services_use_ntlm_authentication = True
    assert httpx.get(url).headers["www-authenticate"] == "NTLM"


@pytest.mark.parametrize("ntlm_only", [False, True])
def test_navclient_from_settings_reads_and_writes(
    sandbox: SandboxServers, world: SandboxWorld, ntlm_only: bool
) -> None:
    world.nav.services_use_ntlm_authentication = ntlm_only
    with NavClient.from_settings(ntlm_settings(sandbox), max_concurrency=1) as nav:
        assert isinstance(nav.auth, NtlmAuth)
        order = nav.get_sales_order("SO-1")
        assert order is not None
        updated = nav.patch_sales_order("SO-1", order["@odata.etag"], {"Package_Tracking_No": "1ZNTLM"})
        assert updated["Package_Tracking_No"] == "1ZNTLM"
        assert len(nav.find_sales_orders("No", ["SO-2", "SO-3"])) == 2
        assert nav.auth.handshakes == 1  # one connection, authenticated once, reused
    assert world.nav.sales_orders["SO-1"]["Package_Tracking_No"] == "1ZNTLM"
    assert unauthorized_legs(world) == 2  # the bare first request and the challenge


def test_wrong_password_is_refused_without_leaking_it(sandbox: SandboxServers, world: SandboxWorld) -> None:
    wrong = "definitely-not-the-password"
    with NavClient.from_settings(ntlm_settings(sandbox, nav_password=wrong)) as nav:
        with pytest.raises(NavAuthError) as caught:
            nav.get_sales_order("SO-1")
        assert caught.value.status == 401
        assert wrong not in str(caught.value) and wrong not in repr(nav.auth)
    unknown = ntlm_settings(sandbox, nav_username="SANDBOX\\someone")
    with NavClient.from_settings(unknown) as nav, pytest.raises(NavAuthError):
        nav.get_sales_order("SO-1")
    assert world.nav.log.count("GET") == unauthorized_legs(world)  # nothing was served


def test_concurrent_requests_over_several_connections(
    sandbox: SandboxServers, world: SandboxWorld, client: NavClient
) -> None:
    world.nav.faults.latency_ms = 40  # requests overlap, so the client opens several connections
    barrier = threading.Barrier(4)

    def one(n: int) -> str:
        if n < 4:
            barrier.wait()
        order = client.get_sales_order(f"SO-{n % 8}")
        assert order is not None
        return order["No"]

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(one, range(40))) == sorted(f"SO-{n % 8}" for n in range(40))
    assert world.nav.max_in_flight >= 2
    assert isinstance(client.auth, NtlmAuth)
    # Every connection was authenticated once and then reused: at most one handshake each.
    assert 2 <= client.auth.handshakes <= client.max_concurrency
    assert unauthorized_legs(world) == 2 * client.auth.handshakes
    assert world.nav.log.count("GET") - unauthorized_legs(world) == 40


def test_the_login_belongs_to_the_connection(sandbox: SandboxServers, world: SandboxWorld) -> None:
    connections = sandbox.nav_app.state.connections
    with NavClient.from_settings(ntlm_settings(sandbox), max_concurrency=1) as nav:
        assert nav.get_sales_order("SO-1") is not None
        assert len(connections) == 1
    assert wait_for(lambda: len(connections) == 0)  # closed: the server forgot the login
    # A new connection must log in again; one without credentials is refused.
    assert httpx.get(sandbox.nav_odata_url + "/SalesOrder").status_code == 401
    with NavClient.from_settings(ntlm_settings(sandbox), max_concurrency=1) as nav:
        assert nav.get_sales_order("SO-2") is not None
        assert nav.auth.handshakes == 1


def test_a_forged_authenticate_message_is_refused(sandbox: SandboxServers, world: SandboxWorld) -> None:
    with httpx.Client(base_url=sandbox.nav_odata_url + "/") as http:
        first = http.get(
            "SalesOrder", headers={"Authorization": "Negotiate " + base64.b64encode(b"junk").decode()}
        )
        assert first.status_code == 401
        forged = b"NTLMSSP\x00\x03\x00\x00\x00" + b"\x00" * 80
        second = http.get(
            "SalesOrder", headers={"Authorization": "Negotiate " + base64.b64encode(forged).decode()}
        )
        assert second.status_code == 401
        assert http.get("SalesOrder").status_code == 401
