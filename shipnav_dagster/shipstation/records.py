"""What the parsers of both API generations share: the field readers and the record envelope. Pure.

Strict by field, tolerant by record: a field shipnav uses that is present but unreadable raises
:class:`RecordError` naming the field, the value and the rule, and :func:`received` turns that
into one ``invalid`` record (raw payload kept, reason attached) while the rest of the page goes on.
"""

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from shipnav_dagster.core.model import ReceivedRecord, ShipRecord, Source

_TRUE = {True, "true", "True", "TRUE", "1"}  # True == 1 in a set
_FALSE = {False, "false", "False", "FALSE", "0", None, ""}  # False == 0 in a set
_SHOWN = 80  # characters of an unreadable value quoted in a problem


class RecordError(ValueError):
    """A payload lacks what shipnav needs or carries a value it cannot read; the message says
    which field, which value and what was expected."""


def shown(value: object) -> str:
    """A value as quoted in a problem: its repr, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def text(value: object, field: str) -> str | None:
    """Text, trimmed; None for null or blank. Numbers are read as their digits."""
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise RecordError(f"{field} {shown(value)} is not text")
    stripped = str(value).strip()
    return stripped or None


def whole_number(value: object, field: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field} {shown(value)} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise RecordError(f"{field} {shown(value)} is not a whole number")


def boolean(value: object, field: str) -> bool:
    if isinstance(value, bool | int | str | type(None)) and value in _TRUE:
        return True
    if isinstance(value, bool | int | str | type(None)) and value in _FALSE:
        return False
    raise RecordError(f"{field} {shown(value)} is not true or false")


T = TypeVar("T")


def read_with(
    parse: Callable[[str], T], value: object, field: str, rule: str, *, required: bool = False
) -> T | None:
    """A date or timestamp read by its generation's ``parse``; None for null or blank (or the
    problem "<field> is missing" when ``required``), else the problem "<field> <value> <rule>"."""
    if value in (None, ""):
        if required:
            raise RecordError(f"{field} is missing")
        return None
    try:
        return parse(value)  # type: ignore[arg-type]  # a non-string raises TypeError
    except (TypeError, ValueError):
        raise RecordError(f"{field} {shown(value)} {rule}") from None


def address_name(address: object, field: str) -> str | None:
    """The ``name`` of an address object (V1 ``shipTo``, V2 ``ship_to``)."""
    if address is None:
        return None
    if not isinstance(address, dict):
        raise RecordError(f"{field} {shown(address)} is not an address")
    return text(address.get("name"), f"{field}.name")


def invalid_key(source: Source, payload: dict[str, Any]) -> str:
    """A stable key for a payload whose id cannot be read: the same payload, the same key."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f"{source}:invalid-{digest[:16]}"


IdReader = Callable[[dict[str, Any]], int | None]  # raises RecordError when the id is unreadable
Builder = Callable[[str, int, dict[str, Any]], ShipRecord]


def received(
    source: Source, id_field: str, payload: object, read_id: IdReader, build: Builder
) -> ReceivedRecord:
    """One payload as a :class:`ReceivedRecord`: parsed, or kept raw with the reason it is not.

    The record key is ``<source>:<id>``; a payload without a readable id gets a key derived from
    its content, so the same unreadable payload is stored once however often it is seen."""
    if not isinstance(payload, dict):
        body = {"value": payload}
        return ReceivedRecord(
            record_key=invalid_key(source, body),
            source=source,
            payload=body,
            problem=f"the {source} is {shown(payload)}, not a JSON object",
        )
    try:
        source_id = read_id(payload)
    except RecordError as exc:
        return ReceivedRecord(
            record_key=invalid_key(source, payload), source=source, payload=payload, problem=str(exc)
        )
    if source_id is None:
        return ReceivedRecord(
            record_key=invalid_key(source, payload),
            source=source,
            payload=payload,
            problem=f"{id_field} is missing",
        )
    key = f"{source}:{source_id}"
    try:
        record = build(key, source_id, payload)
    except RecordError as exc:
        return ReceivedRecord(record_key=key, source=source, payload=payload, problem=str(exc))
    return ReceivedRecord(record_key=key, source=source, payload=payload, record=record)
