"""V2 identifiers and the ledger's keys. Pure.

ShipStation's migration guide maps a V1 ``orderId 12345678`` to the V2 ``shipment_id
se-12345678`` and a V1 ``shipmentId`` (one label) to the V2 ``label_id se-…``
(https://docs.shipstation.com/orders/legacy-migration), and the spec types every id ``se_id``
(``se-`` and the account's number). So a V2 id is read as the number behind ``se-``, which is
the V1 id of the same record: ``label_id se-N`` is the ledger's ``shipment:N``,
``fulfillment_id se-M`` its ``fulfillment:M``, ``shipment_id se-K`` the order ``K``. A label seen
through V1 and then through V2 is one record, never written twice.

No other shape has been seen in the spec, the docs or captured responses; an id that is not
``se-<digits>`` is refused with a reason (its record is stored as invalid) rather than guessed at.
"""

import re

from shipnav_dagster.shipstation.records import RecordError, shown

_SE_NUMBER = re.compile(r"se-(\d{1,18})")


def se_number(value: object, field: str) -> int | None:
    """The number of ``se-<digits>``; None for null or blank; RecordError for any other value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        found = _SE_NUMBER.fullmatch(value.strip())
        if found:
            return int(found.group(1))
    raise RecordError(f"{field} {shown(value)} is not a ShipStation id like se-123456")


def se_id(number: int) -> str:
    return f"se-{int(number)}"
