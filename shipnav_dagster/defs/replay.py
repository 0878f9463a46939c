"""shipnav_replay_job: replay queued, failed or named records, and drain webhook notifications."""

import dagster as dg
from pydantic import Field

from shipnav_dagster.core.model import RecordStatus, record_key_of
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.defs.sync import WRITES_NAV_TAG, describe_waiting, table
from shipnav_dagster.ledger import reports
from shipnav_dagster.sync.replay import drain_inbox, replay


class ReplayConfig(dg.Config):
    shipment_ids: list[str] = Field(
        default_factory=list,
        description="Records to replay whatever their status: a ShipStation shipmentId, or a record "
        "key such as shipment:123 or fulfillment:45. Empty: every queued record, now.",
    )
    only_due: bool = Field(
        False,
        description="Only queued records whose retry is due (what the retry sensor asks for); "
        "without it, every queued record is replayed now, whatever its backoff.",
    )
    dry_run: bool = Field(
        False, description="Decide and record the decisions, change no record and write nothing to NAV."
    )
    from_inbox: bool = Field(
        False, description="First fetch the resource_url of each received webhook notification."
    )


OUTCOME_COLUMNS = ["record", "outcome", "nav_order", "reason"]


@dg.op(
    pool="shipnav_nav_writes", description="Claim the requested records and run them through match and write."
)
def replay_records(context: dg.OpExecutionContext, config: ReplayConfig, shipnav: ShipnavResource) -> None:
    try:
        keys = [record_key_of(i) for i in config.shipment_ids]
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from None
    ledger = shipnav.ledger
    unknown = sorted(set(keys) - set(ledger.record_rows(keys)))
    if unknown:
        raise dg.Failure(
            description=f"not in the ledger, nothing replayed: {', '.join(unknown)} "
            "(see `shipnav ledger` for the records shipnav knows)"
        )
    run_id = context.run.run_id
    dead_runs = shipnav.dead_runs()
    inbox_summary = None
    if config.from_inbox:
        inbox_summary = drain_inbox(ledger, shipnav.shipstation, run_id=run_id, log=context.log.warning)
    summary = replay(
        ledger,
        shipnav.nav,
        shipnav.write_options(dry_run=config.dry_run or None, record_state=not config.dry_run),
        run_id=run_id,
        max_age=shipnav.max_unmatched_age,
        record_keys=keys,
        only_due=config.only_due,
        dead_runs=dead_runs,
        inbox_from=inbox_summary,
        log=context.log.info,
    )
    outcomes = reports.run_outcomes(ledger, run_id)
    for o in outcomes:
        context.log.info(
            f"{o.record_key}: {o.outcome}{f' -> NAV {o.nav_order_no}' if o.nav_order_no else ''}: {o.reason}"
        )
    waiting = reports.waiting(ledger)
    if not summary.claimed:
        context.log.info(f"nothing to replay: {describe_waiting(waiting)}")
    attention = waiting.counts.get(RecordStatus.NEEDS_ATTENTION, 0)
    if attention:
        # Loud on purpose: these have waited longer than SHIPNAV_UNMATCHED_MAX_AGE_HOURS.
        context.log.warning(
            f"{attention} records need attention (see `shipnav ledger --status needs_attention`)"
        )
    context.add_output_metadata(
        {
            "claimed": dg.MetadataValue.int(len(summary.claimed)),
            "dry_run": dg.MetadataValue.bool(config.dry_run),
            "webhook_notifications": dg.MetadataValue.int(summary.inbox.notifications),
            "webhook_records": dg.MetadataValue.int(len(summary.inbox.records)),
            "decisions": dg.MetadataValue.json(dict(summary.match.counts)),
            "nav_orders": dg.MetadataValue.json(dict(summary.write.counts)),
            "nav_patches": dg.MetadataValue.int(summary.write.patches),
            "needs_attention": dg.MetadataValue.int(attention),
            "waiting": dg.MetadataValue.json(waiting.counts),
            "next_due_utc": dg.MetadataValue.text(
                waiting.next_due.isoformat(timespec="seconds") if waiting.next_due else "-"
            ),
            "summary": dg.MetadataValue.md(
                f"Replayed {len(summary.claimed)} records."
                if summary.claimed
                else f"Nothing to replay: {describe_waiting(waiting)}"
            ),
            "outcomes": table(
                [
                    {
                        "record": o.record_key,
                        "outcome": o.outcome,
                        "nav_order": o.nav_order_no or "",
                        "reason": o.reason,
                    }
                    for o in outcomes
                ],
                OUTCOME_COLUMNS,
            ),
        }
    )


@dg.job(
    name="shipnav_replay_job",
    tags={**WRITES_NAV_TAG, "dagster/max_retries": "1", "dagster/retry_on_asset_or_op_failure": "false"},
    description="Replay queued or failed records (and webhook notifications) through match and write-back.",
)
def shipnav_replay_job() -> None:
    replay_records()
