"""The ShipStation source of the configured generation (SHIPSTATION_API_VERSION)."""

from typing import Any

from shipnav_dagster.settings import Settings
from shipnav_dagster.shipstation.source import ShipStationSource
from shipnav_dagster.shipstation.v1.client import ShipStationClient
from shipnav_dagster.shipstation.v1.source import V1Source
from shipnav_dagster.shipstation.v2.client import ShipStationV2Client
from shipnav_dagster.shipstation.v2.source import V2Source


def open_source(settings: Settings, **client_options: Any) -> ShipStationSource:
    """V1 (key + secret, Basic) or V2 (API-Key header), as the settings say; a SettingsError
    names what is missing. ``client_options`` go to the client (timeouts, retries, page size)."""
    s = settings.require(shipstation=True, nav=False)
    client_options.setdefault("timeout", s.shipnav_http_timeout_seconds)
    key = s.value("shipstation_api_key")
    if s.shipstation_version == "v2":
        return V2Source(ShipStationV2Client(s.shipstation_url, key, **client_options))
    secret = s.value("shipstation_api_secret")
    return V1Source(ShipStationClient(s.shipstation_url, key, secret, **client_options))
