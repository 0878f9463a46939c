"""shipnav_replay_job: replay queued, failed or named records, and drain webhook notifications."""

import dagster as dg
from pydantic import Field

from shipnav_dagster.core.model import RecordStatus, record_key_of
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.defs.sync import WRITES_NAV_TAG
from shipnav_dagster.ledger import reports
from shipnav_dagster.sync.replay import drain_inbox, replay


class ReplayConfig(dg.Config):
    shipment_ids: list[str] = Field(
        default_factory=list,
        description="Records to replay whatever their status: a ShipStation shipmentId, or a record "
        "key such as shipment:123 or fulfillment:45.",
    )
    all_due: bool = Field(False, description="Also replay every queued record whose retry is due.")
    dry_run: bool = Field(False, description="Decide and record everything, write nothing to NAV.")
    from_inbox: bool = Field(
        False, description="First fetch the resource_url of each received webhook notification."
    )


@dg.op(
    pool="shipnav_nav_writes", description="Claim the requested records and run them through match and write."
)
def replay_records(context: dg.OpExecutionContext, config: ReplayConfig, shipnav: ShipnavResource) -> None:
    keys = [record_key_of(i) for i in config.shipment_ids]
    inbox_summary = None
    if config.from_inbox:
        inbox_summary = drain_inbox(
            shipnav.ledger,
            shipnav.shipstation,
            api_url=shipnav.settings.shipstation_api_url,
            run_id=context.run.run_id,
            log=context.log.warning,
        )
    summary = replay(
        shipnav.ledger,
        shipnav.nav,
        shipnav.write_options(dry_run=config.dry_run or None),
        run_id=context.run.run_id,
        max_age=shipnav.max_unmatched_age,
        record_keys=keys,
        all_due=config.all_due,
        inbox_from=inbox_summary,
        log=context.log.info,
    )
    if summary.unknown:
        context.log.warning(f"not in the ledger, nothing to replay: {', '.join(summary.unknown)}")
    decisions = summary.match.counts
    outcomes = summary.write.counts
    attention = reports.status_counts(shipnav.ledger).get(RecordStatus.NEEDS_ATTENTION, 0)
    if attention:
        # Loud on purpose: these have waited longer than SHIPNAV_UNMATCHED_MAX_AGE_HOURS.
        context.log.warning(
            f"{attention} records need attention (see `shipnav ledger --status needs_attention`)"
        )
    context.add_output_metadata(
        {
            "claimed": dg.MetadataValue.int(len(summary.claimed)),
            "unknown_ids": dg.MetadataValue.json(summary.unknown),
            "webhook_notifications": dg.MetadataValue.int(summary.inbox.notifications),
            "webhook_records": dg.MetadataValue.int(len(summary.inbox.records)),
            "decisions": dg.MetadataValue.json(dict(decisions)),
            "nav_orders": dg.MetadataValue.json(dict(outcomes)),
            "nav_patches": dg.MetadataValue.int(summary.write.patches),
            "needs_attention": dg.MetadataValue.int(attention),
        }
    )


@dg.job(
    name="shipnav_replay_job",
    tags={**WRITES_NAV_TAG, "dagster/max_retries": "1", "dagster/retry_on_asset_or_op_failure": "false"},
    description="Replay queued or failed records (and webhook notifications) through match and write-back.",
)
def shipnav_replay_job() -> None:
    replay_records()
