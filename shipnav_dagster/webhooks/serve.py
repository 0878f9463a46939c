"""Running the receiver: ``shipnav webhooks serve`` in the foreground under uvicorn."""

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette

from shipnav_dagster.webhooks.app import WEBHOOK_PREFIX, app_from_settings, log

if TYPE_CHECKING:
    from shipnav_dagster.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


def _uvicorn_config(app: Starlette, host: str, port: int, log_config: Any = None) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        access_log=False,  # it logs the raw path, token included
        server_header=False,
        log_config=log_config,
        log_level="info",
    )


def _log_config() -> dict[str, Any]:
    """uvicorn's logging setup plus our logger on the same handler."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["shipnav_dagster"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, settings: "Settings | None" = None) -> None:
    """Run the receiver in the foreground until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    import logging.config

    import uvicorn

    from shipnav_dagster.settings import load_settings

    config = _log_config()
    logging.config.dictConfig(config)
    settings = settings or load_settings()
    from shipnav_dagster import redaction

    redaction.install_for_settings(settings)  # the token and API secrets never reach a log line
    app = app_from_settings(settings)
    log.info("receiving ShipStation webhooks at POST %s*** (token redacted)", WEBHOOK_PREFIX)
    # Logging is configured above already; uvicorn must not replace it.
    uvicorn.Server(_uvicorn_config(app, host, port)).run()
