"""`shipnav demo`: the sandbox, a local Dagster instance, real sync runs, and what happened."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click

from shipnav_dagster.cli.common import shipnav_command
from shipnav_dagster.cli.home import prepare_home
from shipnav_dagster.core.model import RecordStatus
from shipnav_dagster.ledger import reports
from shipnav_dagster.ledger.repository import Ledger

# Step-by-step Dagster logs stay in the instance (and the UI); the terminal gets the summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

OUTCOME_ORDER = [
    (RecordStatus.WRITTEN, "written to NAV"),
    (RecordStatus.ALREADY_CORRECT, "already correct in NAV"),
    (RecordStatus.NO_ORDER_YET, "queued: NAV order not there yet"),
    (RecordStatus.NEEDS_ATTENTION, "queued, needs attention"),
    (RecordStatus.AMBIGUOUS, "ambiguous: not written"),
    (RecordStatus.PARKED, "parked: NAV cannot take the value"),
    (RecordStatus.FAILED, "failed: queued for retry"),
    (RecordStatus.VOIDED, "voided label"),
    (RecordStatus.IGNORED, "ignored (return label / no tracking)"),
    (RecordStatus.INVALID, "invalid: nothing to match on"),
    (RecordStatus.MATCHED_PENDING, "matched, not written (dry run)"),
]


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@click.command(
    "demo",
    help="Start the sandbox in-process, run shipnav_sync_job twice on a local SQLite Dagster "
    "instance (the second run shows nothing is written twice) and print what was written, already "
    "correct, queued, ambiguous or parked, and why.",
    short_help="the embedded default: sandbox + local Dagster instance + a full sync, then a summary",
)
@click.option("--home", default=".shipnav/demo", show_default=True, help="instance folder, recreated")
@click.option("--seed", type=int, default=7, show_default=True, help="seed of the generated shop")
@click.option(
    "--orders", type=click.IntRange(min=0), default=300, show_default=True, help="ShipStation orders"
)
@click.option(
    "--shipstation",
    "generation",
    type=click.Choice(["v1", "v2"]),
    default="v1",
    show_default=True,
    help="the ShipStation API generation the sync reads the shop through",
)
def demo(home: str, seed: int, orders: int, generation: str) -> int:
    return run_demo(Path(home), seed=seed, orders=orders, generation=generation)


def run_demo(
    home: Path, *, seed: int = 7, orders: int = 300, generation: str = "v1", out: TextIO = sys.stdout
) -> int:
    from shipnav_dagster.instance import open_instance
    from shipnav_dagster.sandbox.seed import build_world
    from shipnav_dagster.sandbox.server import running_sandbox

    home = prepare_home(home, "demo")
    world = build_world(seed=seed, orders=orders)
    out.write(
        f"shipnav demo: sandbox shop with {len(world.shipstation.orders)} ShipStation orders, "
        f"{len(world.shipstation.shipments)} labels, {len(world.nav.sales_orders)} NAV sales orders, "
        f"read through ShipStation API {generation.upper()}\n"
    )
    ss_log = world.shipstation.v2.log if generation == "v2" else world.shipstation.log
    with running_sandbox(world) as sandbox:
        env = sandbox.env(shipstation_api_version=generation) | {"DAGSTER_HOME": str(home)}
        env.pop("SHIPNAV_DATABASE_URL", None)
        with _environ(env):
            os.environ.pop("SHIPNAV_DATABASE_URL", None)
            from shipnav_dagster.definitions import defs

            job = defs.resolve_job_def("shipnav_sync_job")
            with open_instance(home) as instance:
                first = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
                patches_first = world.nav.log.count("PATCH")
                second = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
                patches_second = world.nav.log.count("PATCH") - patches_first
            ledger_url = f"sqlite:///{home / 'shipnav-ledger.db'}"
            _print_summary(out, ledger_url)
            out.write(
                f"\nrun 1 ({first.run_id}): {'succeeded' if first.success else 'FAILED'}, "
                f"{patches_first} NAV PATCH requests\n"
                f"run 2 ({second.run_id}): {'succeeded' if second.success else 'FAILED'}, "
                f"{patches_second} NAV PATCH requests (nothing new to write)\n"
                f"ShipStation {generation.upper()} requests: {ss_log.count()}, "
                f"NAV requests: {world.nav.log.count()}\n\n"
                "Inspect this demo's record-level ledger:\n"
                f"  DAGSTER_HOME={home} {shipnav_command()} ledger\n"
                "Try it in the Dagster UI, with a live sandbox behind it (syncs, replays, schedules, "
                "sensors, the month-end report):\n"
                f"  {shipnav_command()} dev\n"
            )
            return 0 if first.success and second.success and patches_second == 0 else 1


def _print_summary(out: TextIO, ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    try:
        by_status = reports.records_by_status(ledger)
    finally:
        ledger.dispose()
    out.write(f"\n{'outcome':<42} {'records':>7}\n{'-' * 50}\n")
    for status, label in OUTCOME_ORDER:
        if status in by_status:
            out.write(f"{label:<42} {len(by_status[status]):>7}\n")
    for status, label in OUTCOME_ORDER:
        for key, nav_no, tracking, reason in by_status.get(status, [])[:3]:
            where = f" -> NAV {nav_no}" if nav_no else ""
            out.write(f"\n[{label}] {key}{where} (tracking {tracking or '-'})\n    {reason}")
    out.write("\n")
