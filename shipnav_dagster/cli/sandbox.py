"""``shipnav sandbox``: the seeded ShipStation and NAV emulators on localhost, and their environment."""

import contextlib
import sys

import click

from shipnav_dagster.cli.common import format_env, stop_event

PORT = click.IntRange(0, 65535)


@click.command(
    "sandbox",
    help="Start the ShipStation and NAV OData V4 emulators with a generated shop, print the "
    "environment that points shipnav at them as NAME=value lines on standard output, and serve "
    "until interrupted (Ctrl-C or SIGTERM).",
    short_help="run the seeded ShipStation and NAV sandbox servers and print their environment",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to listen on")
@click.option("--shipstation-port", type=PORT, default=0, show_default=True, help="0 = any free port")
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
    help="ShipStation requests per minute per API key (0 = unlimited)",
)
def sandbox(
    host: str,
    shipstation_port: int,
    nav_port: int,
    seed: int,
    orders: int,
    latency_ms: float,
    nav_auth: str,
    platform: str,
    tracking_max_length: int | None,
    rate_limit: int,
) -> int:
    from shipnav_dagster.sandbox.scenario import use_windows_auth
    from shipnav_dagster.sandbox.seed import build_world
    from shipnav_dagster.sandbox.server import SandboxServers

    world = build_world(seed=seed, orders=orders, tracking_max_length=tracking_max_length, platform=platform)
    if nav_auth == "ntlm":
        use_windows_auth(world)
    world.shipstation.rate_limit_per_minute = rate_limit
    world.shipstation.faults.latency_ms = latency_ms
    world.nav.faults.latency_ms = latency_ms

    stop = stop_event()
    servers = SandboxServers(world, host=host, shipstation_port=shipstation_port, nav_port=nav_port)
    try:
        servers.start()
    except (RuntimeError, OSError) as exc:
        with contextlib.suppress(RuntimeError):  # the server that never started cannot be joined
            servers.stop()
        print(f"shipnav sandbox: {exc}", file=sys.stderr)
        return 1
    try:
        print(format_env(servers.env(nav_auth=nav_auth)), flush=True)
        print(
            f"shipnav sandbox: ShipStation at {servers.shipstation_url}, NAV at {servers.nav_base_url} "
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
