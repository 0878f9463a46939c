"""The ``shipnav`` console script.

Each subcommand is one ``register_*`` function (adds its parser and sets ``handler``) plus one
``run_*`` function (does the work, returns the exit code). ``SUBCOMMANDS`` is the one place that
lists them; add a new subcommand by writing the pair and appending its register function.
"""

import argparse
import contextlib
import re
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from types import FrameType

Handler = Callable[[argparse.Namespace], int]
Subparsers = argparse._SubParsersAction  # what add_subparsers() returns


# --------------------------------------------------------------------------------------------
# shipnav sandbox
# --------------------------------------------------------------------------------------------


def register_sandbox(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run the seeded ShipStation and NAV sandbox servers and print their environment",
        description=(
            "Start the ShipStation V1 and NAV OData V4 emulators with a generated shop, print the "
            "environment that points shipnav at them as NAME=value lines on standard output, and "
            "serve until interrupted (Ctrl-C or SIGTERM)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--shipstation-port", type=_port, default=0, help="0 = any free port (default)")
    parser.add_argument("--nav-port", type=_port, default=0, help="0 = any free port (default)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated shop (default 7)")
    parser.add_argument("--orders", type=_non_negative, default=300, help="ShipStation orders (default 300)")
    parser.add_argument(
        "--latency-ms", type=_non_negative_float, default=0.0, help="added latency per request"
    )
    parser.add_argument("--nav-auth", choices=("oauth2", "basic"), default="oauth2")
    parser.add_argument(
        "--tracking-max-length",
        type=_tracking_length,
        metavar="N",
        default=30,
        help="length of NAV's Package Tracking No. (30 for NAV and BC up to v26, 50 from BC 27)",
    )
    parser.add_argument(
        "--rate-limit",
        type=_non_negative,
        default=40,
        help="ShipStation requests per minute per API key (default 40; 0 = unlimited)",
    )
    parser.set_defaults(handler=run_sandbox)


def run_sandbox(args: argparse.Namespace) -> int:
    from shipnav_dagster.sandbox.seed import build_world
    from shipnav_dagster.sandbox.server import SandboxServers

    world = build_world(seed=args.seed, orders=args.orders, tracking_max_length=args.tracking_max_length)
    world.shipstation.rate_limit_per_minute = args.rate_limit
    world.shipstation.faults.latency_ms = args.latency_ms
    world.nav.faults.latency_ms = args.latency_ms

    stop = _stop_event()
    servers = SandboxServers(
        world, host=args.host, shipstation_port=args.shipstation_port, nav_port=args.nav_port
    )
    try:
        servers.start()
    except (RuntimeError, OSError) as exc:
        with contextlib.suppress(RuntimeError):  # the server that never started cannot be joined
            servers.stop()
        print(f"shipnav sandbox: {exc}", file=sys.stderr)
        return 1
    try:
        print(format_env(servers.env(nav_auth=args.nav_auth)), flush=True)
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


def format_env(env: dict[str, str]) -> str:
    """``NAME=value`` lines that a POSIX shell can source and a ``.env`` file can hold."""
    return "\n".join(f"{name}={env_quote(value)}" for name, value in env.items())


def env_quote(value: str) -> str:
    """Quote a value only where needed, so that ``sh`` reads it back exactly.

    ``shlex.quote`` handles everything without a single quote. A value with one (the NAV OData
    root ends in ``Company('CRONUS…')``) goes in double quotes instead of shlex's ``'"'"'``
    splicing, so the lines also work as a ``.env`` file (python-dotenv reads double-quoted values
    back exactly unless they contain ``$`` or a backtick, which sandbox values never do).
    """
    if "'" not in value:
        return shlex.quote(value)
    escaped = re.sub(r'([\\"$`])', r"\\\1", value)
    return f'"{escaped}"'


def _stop_event() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so serving loops end cleanly with exit code 0."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, handle)
    return stop


# --------------------------------------------------------------------------------------------
# Argument types
# --------------------------------------------------------------------------------------------


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text}")
    return value


def _tracking_length(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 250:
        raise argparse.ArgumentTypeError(f"must be from 1 to 250: {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text}")
    return value


# --------------------------------------------------------------------------------------------
# shipnav demo
# --------------------------------------------------------------------------------------------


def register_demo(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the embedded default: sandbox + local Dagster instance + a full sync, then a summary",
        description=(
            "Start the sandbox in-process, run shipnav_sync_job twice on a local SQLite Dagster "
            "instance (the second run shows nothing is written twice) and print what was written, "
            "already correct, queued, ambiguous or parked, and why."
        ),
    )
    parser.add_argument(
        "--home", default=".shipnav/demo", help="instance folder, recreated (default .shipnav/demo)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated shop (default 7)")
    parser.add_argument("--orders", type=_non_negative, default=300, help="ShipStation orders (default 300)")
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shipnav_dagster.demo import run_demo as demo

    return demo(Path(args.home), seed=args.seed, orders=args.orders)


# --------------------------------------------------------------------------------------------
# shipnav ledger / shipnav replay
# --------------------------------------------------------------------------------------------


def register_ledger(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "ledger",
        help="list ledger records (or `ledger show ID` for one record's full history)",
        description="The record-level audit trail: what was seen, decided and written, and why.",
    )
    parser.add_argument("--status", help="only records with this status (e.g. no_order_yet, parked)")
    parser.add_argument(
        "--since", type=_timestamp, help="only records updated since (ISO date or datetime, UTC)"
    )
    parser.add_argument("--limit", type=_non_negative, default=200)
    parser.set_defaults(handler=run_ledger)
    nested = parser.add_subparsers(dest="ledger_command", metavar="show")
    show = nested.add_parser("show", help="a record's whole history with Dagster run ids")
    show.add_argument("record", help="shipmentId, or a record key such as shipment:123 / fulfillment:45")
    show.set_defaults(handler=run_ledger_show)


def _ledger():  # type: ignore[no-untyped-def]
    from shipnav_dagster.ledger.repository import Ledger
    from shipnav_dagster.settings import load_settings

    return Ledger(load_settings().database_url).create_all()


def run_ledger(args: argparse.Namespace) -> int:
    from shipnav_dagster.audit import list_records

    list_records(_ledger(), sys.stdout, status=args.status, since=args.since, limit=args.limit or 200)
    return 0


def run_ledger_show(args: argparse.Namespace) -> int:
    from shipnav_dagster.audit import show_record

    try:
        return 0 if show_record(_ledger(), args.record, sys.stdout) else 1
    except ValueError as exc:
        print(f"shipnav ledger show: {exc}", file=sys.stderr)
        return 2


def register_replay(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="run shipnav_replay_job for the given records, or for every due queued record",
        description=(
            "Replays records through the same match and write-back as the sync, as a run of "
            "shipnav_replay_job on the Dagster instance of DAGSTER_HOME (so it shows in the UI)."
        ),
    )
    parser.add_argument(
        "records", nargs="*", help="shipmentIds or record keys (shipment:123, fulfillment:45)"
    )
    parser.add_argument("--all-due", action="store_true", help="every queued record whose retry is due")
    parser.add_argument("--dry-run", action="store_true", help="decide and record, write nothing")
    parser.add_argument("--inbox", action="store_true", help="first fetch waiting webhook notifications")
    parser.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    from shipnav_dagster.replay_cli import launch_replay

    if not (args.records or args.all_due or args.inbox):
        print("shipnav replay: name records, or pass --all-due / --inbox", file=sys.stderr)
        return 2
    return launch_replay(args.records, all_due=args.all_due, dry_run=args.dry_run, from_inbox=args.inbox)


def _timestamp(text: str) -> datetime:
    from datetime import UTC

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or datetime: {text}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# shipnav webhooks serve / subscribe
# --------------------------------------------------------------------------------------------


def register_webhooks(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "webhooks",
        help="receive ShipStation SHIP_NOTIFY / ORDER_NOTIFY webhooks, or subscribe to them",
        description="The receiver only stores notifications; shipnav_webhook_sensor turns them into runs.",
    )
    nested = parser.add_subparsers(dest="webhooks_command", metavar="COMMAND", required=True)
    serve = nested.add_parser(
        "serve", help="serve POST /webhooks/shipstation/{SHIPNAV_WEBHOOK_TOKEN} (put HTTPS in front)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8787, help="port (default 8787)")
    serve.set_defaults(handler=run_webhooks_serve)
    subscribe = nested.add_parser("subscribe", help="register SHIP_NOTIFY and ORDER_NOTIFY with ShipStation")
    subscribe.add_argument(
        "--target-url", required=True, help="public HTTPS URL ending in /webhooks/shipstation/<token>"
    )
    subscribe.add_argument("--store-id", type=int, default=None, help="only this ShipStation store")
    subscribe.set_defaults(handler=run_webhooks_subscribe)


def run_webhooks_serve(args: argparse.Namespace) -> int:
    from shipnav_dagster.settings import load_settings
    from shipnav_dagster.webhooks.serve import serve

    serve(args.host, args.port, load_settings())
    return 0


def run_webhooks_subscribe(args: argparse.Namespace) -> int:
    from shipnav_dagster.settings import load_settings
    from shipnav_dagster.webhooks.subscribe import run_subscribe

    return run_subscribe(load_settings(), args.target_url, args.store_id)


# --------------------------------------------------------------------------------------------
# shipnav check
# --------------------------------------------------------------------------------------------


def register_check(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "check",
        help="ping ShipStation, NAV and the ledger with the configured settings and say what works",
        description=(
            "Check the settings, the ShipStation credentials, rate limit, stores and /shipments, the "
            "NAV token or Basic login, $metadata, the published services with the fields shipnav "
            "uses and the tracking length, and the ledger. One OK / WARN / FAIL line per check; "
            "exit code 1 when anything failed. Secrets are never printed."
        ),
    )
    parser.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    from shipnav_dagster.connection_check import run

    return run(sys.stdout)


# --------------------------------------------------------------------------------------------
# shipnav secrets set / list / delete / rotate-key / generate-key
# --------------------------------------------------------------------------------------------


def register_secrets(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "secrets",
        help="store credentials encrypted in the ledger (SHIPNAV_SECRET_KEY); the environment wins",
        description=(
            "Credentials kept in the ledger, encrypted with the Fernet key in SHIPNAV_SECRET_KEY. "
            "Each one stands in for the environment variable of the same name; a variable set in "
            "the environment always wins over the stored value. Values are never printed."
        ),
    )
    nested = parser.add_subparsers(dest="secrets_command", metavar="COMMAND", required=True)
    store = nested.add_parser(
        "set",
        help="store NAME (prompted without echo on a terminal, else read from standard input)",
        description="One trailing newline of standard input is removed; an empty value is refused.",
    )
    store.add_argument("name", metavar="NAME", help="e.g. NAV_CLIENT_SECRET or SHIPSTATION_API_SECRET")
    nested.add_parser("list", help="names and dates of the stored secrets (never values)")
    delete = nested.add_parser("delete", help="delete a stored secret")
    delete.add_argument("name", metavar="NAME")
    rotate = nested.add_parser(
        "rotate-key",
        help="re-encrypt every stored secret under a new key (one transaction)",
        description="The old key is SHIPNAV_SECRET_KEY; the new key comes from --new-key-file or stdin.",
    )
    rotate.add_argument("--new-key-file", metavar="PATH", help="file holding the new key")
    nested.add_parser("generate-key", help="print a new random key for SHIPNAV_SECRET_KEY")
    parser.set_defaults(handler=run_secrets)


def run_secrets(args: argparse.Namespace) -> int:
    from shipnav_dagster.secrets import run_command
    from shipnav_dagster.settings import read_environment

    # read_environment, not load_settings: these commands must work when the key is wrong.
    return run_command(args, read_environment, sys.stdin, sys.stdout, sys.stderr)


# --------------------------------------------------------------------------------------------
# The parser and entry point
# --------------------------------------------------------------------------------------------

# Every subcommand, in the order ``shipnav --help`` lists them.
SUBCOMMANDS: list[Callable[[Subparsers], None]] = [
    register_demo,
    register_sandbox,
    register_ledger,
    register_replay,
    register_webhooks,
    register_check,
    register_secrets,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shipnav",
        description="Write ShipStation tracking numbers back to Microsoft Dynamics NAV sales orders.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
