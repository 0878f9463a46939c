"""`shipnav replay`: one run of shipnav_replay_job on the operator's Dagster instance."""

from collections.abc import Sequence

import click

from shipnav_dagster.cli.common import EXIT_BUSY, CommandError, err, settings
from shipnav_dagster.core.model import record_key_of


@click.command(
    "replay",
    help="Replays records through the same match and write-back as the sync, as a run of "
    "shipnav_replay_job on the Dagster instance of DAGSTER_HOME, or without it on the local "
    "instance of the working directory (./dagster.yaml, files under ./.shipnav/dagster), the one "
    "`dagster job execute` uses there; so the run shows in the UI and other runs see its claims. "
    "Refuses to start (exit code 75) while another run writes to NAV.",
    short_help="replay the named records, or every queued record now, and print what happened",
)
@click.argument("records", nargs=-1)
@click.option(
    "--all-due",
    "only_due",
    is_flag=True,
    help="only queued records whose retry is due (without it and without records: every queued record, now)",
)
@click.option("--dry-run", is_flag=True, help="decide and show what would happen; change nothing")
@click.option("--inbox", is_flag=True, help="first fetch waiting webhook notifications")
def replay(records: tuple[str, ...], only_due: bool, dry_run: bool, inbox: bool) -> int:
    settings(systems=True)  # a bad setting is one message and exit 2 here, not a failed run
    return launch_replay(records, only_due=only_due, dry_run=dry_run, from_inbox=inbox)


def launch_replay(records: Sequence[str], *, only_due: bool, dry_run: bool, from_inbox: bool) -> int:
    from shipnav_dagster.cli.nav_writers import nav_writers, refusal, writer_pools, writer_tags
    from shipnav_dagster.definitions import defs
    from shipnav_dagster.instance import InstanceHomeMissing, locate_instance, open_instance

    try:
        keys = [record_key_of(r) for r in records]
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    unknown = _unknown(keys)
    if unknown:
        raise CommandError(f"not in the ledger, nothing replayed: {', '.join(unknown)}")
    config = {"shipment_ids": keys, "only_due": only_due, "dry_run": dry_run, "from_inbox": from_inbox}
    job = defs.resolve_job_def("shipnav_replay_job")
    try:
        location = locate_instance()
    except InstanceHomeMissing as exc:
        raise CommandError(str(exc)) from None
    print(f"shipnav replay: on {location.describe()}", flush=True)
    with open_instance(location) as instance:
        pools = writer_pools(defs)
        writers = nav_writers(instance, tags=writer_tags(defs), pools=pools)
        if writers:
            err(f"shipnav replay: {refusal(writers, pools)}")
            return EXIT_BUSY
        result = job.execute_in_process(
            instance=instance,
            # The table below is the operator's output; Dagster's step logs stay in the instance.
            run_config={"ops": {"replay_records": {"config": config}}, **QUIET},
            tags={"shipnav/trigger": "cli"},
            raise_on_error=False,
        )
    _print_outcomes(result.run_id)
    print(f"shipnav_replay_job run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
    if not result.success:
        for message in _failures(result):
            err(f"  {message}")
    return 0 if result.success else 1


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _unknown(keys: Sequence[str]) -> list[str]:
    if not keys:
        return []
    from shipnav_dagster.cli.common import settings
    from shipnav_dagster.ledger.repository import Ledger
    from shipnav_dagster.ledger.secret_store import sqlite_file_missing

    url = settings().database_url
    if sqlite_file_missing(url):
        return list(keys)
    ledger = Ledger(url)
    try:
        return sorted(set(keys) - set(ledger.record_rows(list(keys))))
    finally:
        ledger.dispose()


def _print_outcomes(run_id: str) -> None:
    from shipnav_dagster.cli.common import settings
    from shipnav_dagster.ledger import reports
    from shipnav_dagster.ledger.repository import Ledger

    ledger = Ledger(settings().database_url)
    try:
        outcomes = reports.run_outcomes(ledger, run_id)
    finally:
        ledger.dispose()
    if not outcomes:
        print("no record was replayed")
        return
    print(f"{'record':<24} {'outcome':<24} {'NAV order':<12} reason")
    for o in outcomes:
        print(f"{o.record_key:<24} {o.outcome:<24} {o.nav_order_no or '-':<12} {o.reason[:160]}")


def _failures(result: object) -> list[str]:
    events = getattr(result, "all_events", [])
    return [
        str(getattr(e.event_specific_data.error, "message", "")).strip().splitlines()[0]
        for e in events
        if e.is_failure and getattr(getattr(e, "event_specific_data", None), "error", None) is not None
    ]
