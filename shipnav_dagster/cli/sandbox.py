"""``shipnav sandbox``: the seeded ShipStation and NAV emulators on localhost, and their environment."""

import contextlib
import sys
from typing import TYPE_CHECKING

import click

from shipnav_dagster.cli.common import format_env, stop_event

if TYPE_CHECKING:
    from shipnav_dagster.sandbox.server import SandboxServers

PORT = click.IntRange(0, 65535)


@click.command(
    "sandbox",
    help="Start the ShipStation (API V1 and V2, one shop) and NAV OData V4 emulators with a "
    "generated shop, print the environment that points shipnav at them as NAME=value lines on "
    "standard output, and serve until interrupted (Ctrl-C or SIGTERM). --shipstation picks the "
    "generation the environment names; with 'both' the V1 lines are followed by the V2 ones as "
    "comments (use those instead of the SHIPSTATION_ lines to sync through V2).",
    short_help="run the seeded ShipStation and NAV sandbox servers and print their environment",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to listen on")
@click.option(
    "--shipstation",
    "generation",
    type=click.Choice(["v1", "v2", "both"]),
    default="v1",
    show_default=True,
    help="the ShipStation API generation the printed environment points at",
)
@click.option("--shipstation-port", type=PORT, default=0, show_default=True, help="V1; 0 = any free port")
@click.option("--shipstation-v2-port", type=PORT, default=0, show_default=True, help="V2; 0 = any free port")
@click.option("--nav-port", type=PORT, default=0, show_default=True, help="0 = any free port")
@click.option("--seed", type=int, default=7, show_default=True, help="seed of the generated shop")
@click.option(
    "--orders", type=click.IntRange(min=0), default=300, show_default=True, help="ShipStation orders"
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="added latency per request",
)
@click.option(
    "--nav-auth",
    type=click.Choice(["oauth2", "basic", "ntlm"]),
    default="oauth2",
    show_default=True,
    help="how NAV asks for credentials (ntlm: Windows authentication, as NAV 2013-2018 on-prem)",
)
@click.option(
    "--platform",
    type=click.Choice(["nav2018", "bc"]),
    default="nav2018",
    show_default=True,
    help="the NAV product emulated: NAV 2018, or Business Central (read-only posted shipments, $batch)",
)
@click.option(
    "--tracking-max-length",
    type=click.IntRange(1, 250),
    default=None,
    metavar="N",
    help="length of NAV's Package Tracking No. (default: the platform's, 30 for NAV 2018, 50 for BC 27+)",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=40,
    show_default=True,
    help="ShipStation V1 requests per minute per API key (0 = unlimited)",
)
@click.option(
    "--v2-rate-limit",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="ShipStation V2 requests per minute per API key (0 = unlimited)",
)
def sandbox(
    host: str,
    generation: str,
    shipstation_port: int,
    shipstation_v2_port: int,
    nav_port: int,
    seed: int,
    orders: int,
    latency_ms: float,
    nav_auth: str,
    platform: str,
    tracking_max_length: int | None,
    rate_limit: int,
    v2_rate_limit: int,
) -> int:
    from shipnav_dagster.sandbox.scenario import use_windows_auth
    from shipnav_dagster.sandbox.seed import build_world
    from shipnav_dagster.sandbox.server import SandboxServers

    world = build_world(seed=seed, orders=orders, tracking_max_length=tracking_max_length, platform=platform)
    if nav_auth == "ntlm":
        use_windows_auth(world)
    world.shipstation.rate_limit_per_minute = rate_limit
    world.shipstation.v2.rate_limit_per_minute = v2_rate_limit
    world.shipstation.faults.latency_ms = latency_ms
    world.shipstation.v2.faults.latency_ms = latency_ms
    world.nav.faults.latency_ms = latency_ms

    stop = stop_event()
    servers = SandboxServers(
        world,
        host=host,
        shipstation_port=shipstation_port,
        shipstation_v2_port=shipstation_v2_port,
        nav_port=nav_port,
    )
    try:
        servers.start()
    except (RuntimeError, OSError) as exc:
        with contextlib.suppress(RuntimeError):  # the server that never started cannot be joined
            servers.stop()
        print(f"shipnav sandbox: {exc}", file=sys.stderr)
        return 1
    try:
        print(environment(servers, generation, nav_auth), flush=True)
        print(
            f"shipnav sandbox: ShipStation V1 at {servers.shipstation_url}, V2 at "
            f"{servers.shipstation_v2_url}, NAV at {servers.nav_base_url} "
            f"({len(world.shipstation.orders)} orders, {len(world.shipstation.shipments)} labels). "
            "Load the lines above into your shell (set -a; . ./file) and press Ctrl-C to stop.",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        servers.stop()
    return 0


def environment(servers: "SandboxServers", generation: str, nav_auth: str) -> str:
    """NAME=value lines for one generation; for both, the V2 variables follow as comments."""
    if generation != "both":
        return format_env(servers.env(nav_auth=nav_auth, shipstation_api_version=generation))
    v2 = {k: v for k, v in servers.env(shipstation_api_version="v2").items() if k.startswith("SHIPSTATION_")}
    alternative = "\n".join(f"# {line}" for line in format_env(v2).splitlines())
    return (
        format_env(servers.env(nav_auth=nav_auth, shipstation_api_version="v1"))
        + "\n# ShipStation API V2 of the same shop: use these instead of the SHIPSTATION_ lines above\n"
        + alternative
    )
