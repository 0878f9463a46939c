"""Building OData V4 `$filter` expressions and key predicates for NAV, safely.

Every value goes through :func:`literal`, which quotes it by type (strings in single quotes with
`'` doubled, dates as bare ISO, numbers bare, booleans as true/false, as OData V4 and NAV read them).
The result is plain text; percent-encoding is left to httpx (``params=``), so a customer named
``O'Brien & Sons`` or ``Müller-Lüdenscheid GmbH`` survives the trip. Field names are checked
as identifiers, so a value can never be smuggled in as a field.

NAV cannot OR two different fields ("The 'OR' operator is not supported on distinct fields"),
so :func:`any_of` is the only way to build an OR here, and it is on one field.
"""

import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import quote

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")

Value = str | int | Decimal | float | date | datetime | bool | None


def field_name(name: str) -> str:
    """``name`` if it is a valid OData property name (NAV control names are identifiers)."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a valid OData field name: {name!r}")
    return name


def literal(value: Value) -> str:
    """The OData V4 literal for a Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot filter on a non-finite number: {value}")
        return format(value, "f")
    if isinstance(value, datetime):  # before date: datetime is a date
        if value.tzinfo is None:
            raise ValueError("a date-time literal needs a time zone (OData uses ISO 8601 with offset)")
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no OData literal for {type(value).__name__}")


def compare(field: str, op: str, value: Value) -> str:
    if op not in _COMPARISONS:
        raise ValueError(f"unknown comparison operator: {op!r}")
    return f"{field_name(field)} {op} {literal(value)}"


def eq(field: str, value: Value) -> str:
    return compare(field, "eq", value)


def ne(field: str, value: Value) -> str:
    return compare(field, "ne", value)


def ge(field: str, value: Value) -> str:
    return compare(field, "ge", value)


def le(field: str, value: Value) -> str:
    return compare(field, "le", value)


def any_of(field: str, values: Iterable[Value]) -> str:
    """``(F eq a or F eq b ...)``: the one OR NAV supports, on a single field."""
    unique = list(dict.fromkeys(values))
    if not unique:
        raise ValueError(f"any_of({field!r}) needs at least one value")
    clauses = [eq(field, v) for v in unique]
    return clauses[0] if len(clauses) == 1 else "(" + " or ".join(clauses) + ")"


def and_(*clauses: str) -> str:
    """Clauses joined with `and`, each parenthesised so their own `or`s stay grouped."""
    parts = [c for c in clauses if c]
    if not parts:
        raise ValueError("and_() needs at least one clause")
    return parts[0] if len(parts) == 1 else " and ".join(f"({c})" for c in parts)


def startswith(field: str, value: str) -> str:
    if not isinstance(value, str):
        raise TypeError("startswith needs a string")
    return f"startswith({field_name(field)},{literal(value)})"


def key_predicate(**keys: Value) -> str:
    """``(Document_Type='Order',No='O%27%27B')``: a URL key segment, quoted like a filter literal
    and percent-encoded so `/`, `#`, `?`, `%`, spaces and non-ASCII characters stay inside it."""
    if not keys:
        raise ValueError("a key predicate needs at least one key")
    parts = [f"{field_name(name)}={quote(literal(value), safe=_KEY_SAFE)}" for name, value in keys.items()]
    return "(" + ",".join(parts) + ")"


# Quotes stay readable (NAV's own URLs show them); everything else that is not unreserved is encoded.
_KEY_SAFE = "'-._~"


def chunked(field: str, values: Iterable[Value], size: int, max_chars: int) -> Iterator[list[Value]]:
    """Distinct non-blank values in groups of at most ``size``, each group's ``any_of`` filter at
    most ``max_chars`` once percent-encoded.

    The encoded length is kept as a running sum (each clause, plus `` or `` between clauses and the
    parentheses), not recomputed for the whole filter at every value."""
    field_name(field)
    separator = len(quote(" or ", safe=""))
    parens = len(quote("()", safe=""))
    group: list[Value] = []
    length = 0
    for value in dict.fromkeys(v for v in values if v not in (None, "")):
        clause = len(quote(eq(field, value), safe=""))
        grown = length + clause + (separator if group else parens)
        if group and (len(group) >= size or grown > max_chars):
            yield group
            group, grown = [], clause + parens
        group.append(value)
        length = grown
    if group:
        yield group
