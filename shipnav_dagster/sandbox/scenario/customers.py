"""Addresses, customers and ShipStation stores of the sandbox shop."""

import re
from datetime import datetime

from shipnav_dagster.sandbox.scenario.values import Record, _digits, _now, _ts
from shipnav_dagster.sandbox.state import (
    SandboxWorld,
)

_STREETS = ("Main St", "Oak Ave", "Pine St", "Maple Dr", "Cedar Ln", "Elm St", "Lakeview Rd", "2nd Ave")
_CITIES = (
    ("Seattle", "WA", "98101"),
    ("Portland", "OR", "97205"),
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Chicago", "IL", "60607"),
    ("Brooklyn", "NY", "11201"),
    ("Atlanta", "GA", "30303"),
    ("San Diego", "CA", "92101"),
    ("Boise", "ID", "83702"),
    ("Madison", "WI", "53703"),
)


def make_address(
    name: str,
    *,
    company: str | None = None,
    key: str | None = None,
    country: str = "US",
    street1: str | None = None,
    city: str | None = None,
    state: str | None = None,
    postal_code: str | None = None,
    residential: bool | None = None,
) -> Record:
    """A ShipStation Address object; unspecified parts are derived from ``key`` (or the name)."""
    seed = key or name
    number = 100 + int(_digits(seed, 4)) % 9800
    default_city, default_state, default_zip = _CITIES[int(_digits(seed + "c", 2)) % len(_CITIES)]
    return {
        "name": name,
        "company": company,
        "street1": street1 or f"{number} {_STREETS[number % len(_STREETS)]}",
        "street2": None,
        "street3": None,
        "city": city or default_city,
        "state": state if state is not None else default_state,
        "postalCode": postal_code or default_zip,
        "country": country,
        "phone": "555-" + _digits(seed + "p", 3) + "-" + _digits(seed + "q", 4),
        "residential": (company is None) if residential is None else residential,
        "addressVerified": "Address validated successfully",
    }


def customer_no_for(name: str) -> str:
    """A stable NAV customer number (Code[20]) for a sell-to name."""
    return "C" + _digits(" ".join(name.split()).lower(), 5)


def _email_for(name: str) -> str:
    ascii_name = name.encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", ".", ascii_name).strip(".") or "customer"
    return f"{slug}@example.com"


def add_store(
    world: SandboxWorld,
    *,
    store_name: str = "ShipStation Manual Store",
    marketplace_name: str = "ShipStation",
    marketplace_id: int = 0,
    store_id: int | None = None,
    created: datetime | None = None,
) -> Record:
    """A ShipStation store (``GET /stores`` shape). Store ids come from the world's id counter."""
    when = _now(created)
    with world.lock:
        sid = store_id if store_id is not None else world.shipstation.next_id()
        store = {
            "storeId": sid,
            "storeName": store_name,
            "marketplaceId": marketplace_id,
            "marketplaceName": marketplace_name,
            "accountName": None,
            "email": None,
            "integrationUrl": None,
            "active": True,
            "companyName": "",
            "phone": "",
            "publicEmail": "",
            "website": "",
            "refreshDate": _ts(when),
            "lastRefreshAttempt": _ts(when),
            "createDate": _ts(when),
            "modifyDate": _ts(when),
            "autoRefresh": marketplace_id != 0,
        }
        world.shipstation.stores[sid] = store
        return store


def _default_store(world: SandboxWorld) -> int:
    if not world.shipstation.stores:
        add_store(world)
    return next(iter(world.shipstation.stores))
