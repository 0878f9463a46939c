"""V2 identifiers: ``se-<number>`` strings over the V1 integer ids of the same records.

ShipStation's migration guide maps a V1 ``orderId 12345678`` to the V2 ``shipment_id
se-12345678`` and a V1 ``shipmentId`` (a label) to ``label_id se-…``
(https://docs.shipstation.com/orders/legacy-migration); fulfillments, stores, warehouses and
webhooks are numbered the same way here. Every V2 id matches the spec's ``se_id`` pattern.
"""

import re
import zlib
from typing import Any

SE_ID = re.compile(r"^se(-[a-z0-9]+)+$")
_NUMBERED = re.compile(r"^se-(\d{1,18})$")


def se_id(number: int | str) -> str:
    return f"se-{number}"


def is_se_id(text: str) -> bool:
    return SE_ID.fullmatch(text) is not None


def number_of(text: str) -> int | None:
    """The V1 number behind ``se-<number>``; None for any other id (which then matches nothing)."""
    match = _NUMBERED.fullmatch(text)
    return int(match.group(1)) if match else None


def optional_se_id(number: object) -> str | None:
    return se_id(number) if isinstance(number, int) else None


def label_batch_id(shipment: dict[str, Any]) -> str:
    """The ``batch_id`` of a label: its V1 batch, or a batch of its own when it was bought alone.

    ShipStation gives every label purchase a batch (a LABEL_CREATED_V2 resource_url is
    ``/v2/labels?batch_id=se-…`` even for one label), while V1 shows ``batchNumber: null`` for
    labels not bought in a user-made batch. A one-label batch reuses the label's number.
    """
    batch = shipment.get("batchNumber")
    return se_id(batch if batch else shipment["shipmentId"])


def carrier_id_for(carrier_code: str | None) -> str | None:
    """A stable ``carrier_id`` for the account's connection to ``carrier_code`` (V1 has none)."""
    if not carrier_code:
        return None
    return se_id(100_000 + zlib.crc32(carrier_code.lower().encode()) % 900_000)
