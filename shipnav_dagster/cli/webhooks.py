"""``shipnav webhooks serve`` and ``shipnav webhooks subscribe``."""

import click

from shipnav_dagster.cli.common import settings, settings_errors_exit


@click.group(
    "webhooks",
    help="The receiver only stores notifications; shipnav_webhook_sensor turns them into runs.",
    short_help="receive ShipStation webhooks (V1 SHIP_NOTIFY / ORDER_NOTIFY, V2 LABEL_CREATED_V2 / "
    "FULFILLMENT_SHIPPED_V2), or subscribe to them",
)
def webhooks() -> None:
    pass


@webhooks.command(
    "serve", help="Serve POST /webhooks/shipstation/{SHIPNAV_WEBHOOK_TOKEN} (put HTTPS in front)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="interface")
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True, help="port")
@settings_errors_exit
def serve(host: str, port: int) -> int:
    from shipnav_dagster.webhooks.serve import serve as run

    run(host, port, settings())
    return 0


@webhooks.command(
    "subscribe",
    help="Register the configured generation's webhooks with ShipStation: V1 SHIP_NOTIFY and "
    "ORDER_NOTIFY, or V2 LABEL_CREATED_V2 and FULFILLMENT_SHIPPED_V2 with the X-Shipnav-Webhook-Secret "
    "header (SHIPNAV_WEBHOOK_HEADER_SECRET, else SHIPNAV_WEBHOOK_TOKEN).",
)
@click.option("--target-url", required=True, help="public HTTPS URL ending in /webhooks/shipstation/<token>")
@click.option("--store-id", type=int, default=None, help="only this ShipStation store")
@settings_errors_exit
def subscribe(target_url: str, store_id: int | None) -> int:
    from shipnav_dagster.webhooks.subscribe import run_subscribe

    return run_subscribe(settings(), target_url, store_id)
