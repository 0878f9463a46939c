"""The values the sandbox's records are made of: account constants, the product catalog, and
deterministic identifiers, tracking numbers and timestamps derived from keys (the same calls give
the same world). Nested objects that never change (weights, dimensions, option blocks) are
shared between records to keep large benchmark worlds small: replace them, never mutate them."""

import functools
import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shipnav_dagster.sandbox.state import (
    format_pacific,
    pacific_now,
)

Record = dict[str, Any]
ItemSpec = tuple[str, int]  # (sku, quantity)


# ShipStation account-level constants: one ShipStation user and one ship-from warehouse.
ACCOUNT_USER_ID = "c9a5a5d3-3f1e-4f7b-9d0e-2b1f6f3c8a10"
WAREHOUSE_ID = 88_001

# NAV demo shipping agents and their services (tables 291 and 5790), as the brief's shop has them.
DEFAULT_SHIPPING_AGENTS: dict[str, frozenset[str]] = {
    "UPS": frozenset({"GROUND", "NEXTDAY", "2DAY"}),
    "FEDEX": frozenset({"GROUND", "EXPRESS", "2DAY"}),
    "USPS": frozenset({"PRIORITY", "FIRST"}),
    "DHL": frozenset({"EXPRESS"}),
}

# The default service ShipStation shows for each carrier when a caller does not name one.
DEFAULT_SERVICE: dict[str, str] = {
    "ups": "ups_ground",
    "fedex": "fedex_ground",
    "usps": "usps_priority_mail",
    "stamps_com": "usps_priority_mail",
    "dhl_express": "dhl_express_worldwide",
    "ontrac": "ontrac_ground",
}


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    unit_price: float
    weight_oz: float
    product_id: int


# A small catalog so orders, shipment items and NAV lines agree on names and prices. NAV item
# numbers are Code[20], so every SKU is upper case and at most 20 characters.
CATALOG: dict[str, Product] = {
    p.sku: p
    for p in (
        Product("MUG-11OZ-BLK", "Ceramic Mug 11oz, Black", 14.0, 16.0, 41_001),
        Product("MUG-15OZ-WHT", "Ceramic Mug 15oz, White", 16.5, 20.0, 41_002),
        Product("TEE-CRW-M-NVY", "Crew Tee, Navy, M", 22.0, 6.0, 41_003),
        Product("TEE-CRW-L-GRY", "Crew Tee, Heather Grey, L", 22.0, 6.5, 41_004),
        Product("HOOD-ZIP-XL-BLK", "Zip Hoodie, Black, XL", 54.0, 22.0, 41_005),
        Product("CAP-5P-OLV", "Five-Panel Cap, Olive", 28.0, 4.0, 41_006),
        Product("BOTTLE-750-STL", "Insulated Bottle 750 ml", 32.0, 14.0, 41_007),
        Product("TOTE-CNV-NAT", "Canvas Tote, Natural", 18.0, 7.0, 41_008),
        Product("SOCK-3PK-MIX", "Crew Socks 3-Pack", 15.0, 5.0, 41_009),
        Product("POSTER-A2-MAP", 'Poster A2 "Coastline"', 24.0, 9.0, 41_010),
        Product("NOTEBK-A5-DOT", "Notebook A5, Dotted", 12.0, 8.0, 41_011),
        Product("LAMP-DESK-BRS", "Desk Lamp, Brass", 89.0, 56.0, 41_012),
        Product("KNIFE-CHEF-8IN", "Chef's Knife 8\"", 119.0, 12.0, 41_013),
        Product("CANDLE-SOY-CDR", "Soy Candle, Cedar", 26.0, 15.0, 41_014),
        Product("BLANKET-WOOL-Q", "Wool Blanket, Queen", 149.0, 68.0, 41_015),
    )
}

# --------------------------------------------------------------------------------------------
# Small formatting and derivation helpers
# --------------------------------------------------------------------------------------------


def _ts(value: datetime) -> str:
    return format_pacific(value)


def _item_ts(value: datetime) -> str:
    """Order-item timestamps: .NET drops trailing zeros there (``2015-08-17T09:24:14.78``)."""
    text = format_pacific(value).rstrip("0")
    return text.rstrip(".")


def _date_text(value: date | datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _digits(key: str, count: int) -> str:
    """``count`` pseudo-random digits derived from ``key`` (deterministic, well spread)."""
    out = ""
    counter = 0
    while len(out) < count:
        digest = hashlib.blake2b(f"{key}/{counter}".encode(), digest_size=16).digest()
        out += str(int.from_bytes(digest, "big"))[1:]  # drop the leading digit: it is biased
        counter += 1
    return out[:count]


def guid_for(key: str) -> str:
    """A GUID-shaped string derived from ``key`` (order keys, user ids): 36 characters."""
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def hex_key_for(key: str) -> str:
    """The same GUID without dashes: 32 hex digits (the other orderKey shape of manual orders)."""
    return guid_for(key).replace("-", "")


def tracking_number_for(carrier_code: str, serial: int, service_code: str | None = None) -> str:
    """A realistically shaped tracking number for ``carrier_code``, unique per (carrier, serial).

    The last digits embed ``serial`` so numbers never collide inside one world; the rest comes
    from a hash so they do not look sequential. FedEx SmartPost / Ground Economy numbers are 34
    digits, longer than NAV's 30-character Package Tracking No. (the over-long case).
    """
    code = carrier_code.lower()
    key = f"{code}:{serial}"
    tail9 = f"{serial % 10**9:09d}"
    if code == "ups":
        service = {"ups_next_day_air": "01", "ups_2nd_day_air": "02"}.get(service_code or "", "03")
        return "1Z" + _alnum(key, 6) + service + f"{serial % 10**8:08d}"  # 18 characters
    if code == "fedex":
        if service_code in ("fedex_ground_economy", "fedex_smartpost"):
            return "92612" + _digits(key, 20) + tail9  # 34 digits
        return "7" + _digits(key, 2) + tail9  # 12 digits
    if code in ("usps", "stamps_com"):
        return "94001" + _digits(key, 8) + tail9  # 22 digits
    if code == "dhl_express":
        return _digits(key, 1) + tail9  # 10 digits
    if code == "ontrac":
        return "C" + _digits(key, 5) + tail9  # 15 characters
    return "TRK" + _digits(key, 3) + tail9


def _alnum(key: str, count: int) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPRSTUVWXY"
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:count])


def _now(value: datetime | None) -> datetime:
    return pacific_now() if value is None else value


def _money(value: float) -> float:
    return round(value, 2)


def _bump_modify(order: Record, when: datetime) -> None:
    """modifyDate only moves forward (a late-arriving helper call must not rewind it)."""
    stamp = _ts(when)
    if stamp > order["modifyDate"]:
        order["modifyDate"] = stamp


# Nested objects that never change after creation are shared between records (one dict per
# distinct value), which keeps 100k-shipment benchmark worlds small. Helpers that change such a
# value replace the object, never mutate it; callers must do the same.
@functools.cache
def _weight(ounces: float) -> Record:
    return {"value": ounces, "units": "ounces", "WeightUnits": 1}


@functools.cache
def _dimensions(length: float, width: float, height: float) -> Record:
    return {"units": "inches", "length": length, "width": width, "height": height}


@functools.cache
def _shipment_options(store_id: int) -> Record:
    return {
        "billToParty": None,
        "billToAccount": None,
        "billToPostalCode": None,
        "billToCountryCode": None,
        "storeId": store_id,
    }


_NO_INSURANCE: Record = {"provider": None, "insureShipment": False, "insuredValue": 0.0}
_NO_CUSTOMS: Record = {"contents": None, "customsItems": None, "nonDelivery": None}


def _product(sku: str) -> Product:
    product = CATALOG.get(sku)
    if product is not None:
        return product
    # Unknown SKUs are allowed (tests invent them); give them a stable price and weight.
    return Product(sku, sku.title(), 10.0, 8.0, 49_000 + int(_digits(sku, 3)))
