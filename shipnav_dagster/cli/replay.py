"""`shipnav replay`: one run of shipnav_replay_job on the operator's Dagster instance."""

from collections.abc import Sequence

import click

from shipnav_dagster.cli.common import EXIT_BUSY, CommandError, err
from shipnav_dagster.core.model import record_key_of


@click.command(
    "replay",
    help="Replays records through the same match and write-back as the sync, as a run of "
    "shipnav_replay_job on the Dagster instance of DAGSTER_HOME, or without it on the local "
    "instance of the working directory (./dagster.yaml, files under ./.shipnav/dagster), the one "
    "`dagster job execute` uses there; so the run shows in the UI and other runs see its claims. "
    "Refuses to start (exit code 75) while another run writes to NAV.",
    short_help="run shipnav_replay_job for the given records, or for every due queued record",
)
@click.argument("records", nargs=-1)
@click.option("--all-due", is_flag=True, help="every queued record whose retry is due")
@click.option("--dry-run", is_flag=True, help="decide and record, write nothing")
@click.option("--inbox", is_flag=True, help="first fetch waiting webhook notifications")
def replay(records: tuple[str, ...], all_due: bool, dry_run: bool, inbox: bool) -> int:
    if not (records or all_due or inbox):
        raise CommandError("name records, or pass --all-due / --inbox")
    return launch_replay(records, all_due=all_due, dry_run=dry_run, from_inbox=inbox)


def launch_replay(records: Sequence[str], *, all_due: bool, dry_run: bool, from_inbox: bool) -> int:
    from shipnav_dagster.cli.nav_writers import nav_writers, refusal, writer_pools, writer_tags
    from shipnav_dagster.definitions import defs
    from shipnav_dagster.instance import InstanceHomeMissing, locate_instance, open_instance

    try:
        keys = [record_key_of(r) for r in records]
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    config = {"shipment_ids": keys, "all_due": all_due, "dry_run": dry_run, "from_inbox": from_inbox}
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
            run_config={"ops": {"replay_records": {"config": config}}},
            tags={"shipnav/trigger": "cli"},
            raise_on_error=False,
        )
    print(f"shipnav_replay_job run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
    for key in keys:
        print(f"  see `shipnav ledger show {key}`")
    return 0 if result.success else 1
