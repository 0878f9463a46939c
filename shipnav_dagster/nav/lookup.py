"""Chunked lookups: one `or` filter per chunk of values on one field, chunks side by side, and the
values NAV refuses to filter on isolated instead of failing the whole lookup."""

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shipnav_dagster.nav.errors import NavError

# 400 codes NAV answers when a filter value is not acceptable for its field (a literal longer than
# the field: "The length of the string is 22, but it must be less than or equal to 20
# characters"): learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/dynamics-error-codes
FILTER_VALUE_CODES = frozenset({"Application_FilterErrorException", "Application_StringExceededLength"})


@dataclass
class Lookup:
    """What a chunked lookup found, and the values NAV refused to filter on (with its reason)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def refuses_values(exc: NavError) -> bool:
    """A 400 about the filter's values (not a syntax or service problem): split and isolate."""
    return exc.status == 400 and exc.code in FILTER_VALUE_CODES


def first_by_no(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entity once (a value may sit in two chunks' results), in the order NAV sent them."""
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        found.setdefault(str(row.get("No")), row)
    return list(found.values())


def run_lookup(
    query: Callable[[list[Any]], list[dict[str, Any]]], groups: Sequence[list[Any]], max_concurrency: int
) -> Lookup:
    """Run ``query`` for every group (side by side when there are several; the client's own limit
    caps the requests in flight). NAV refuses a whole filter when one literal is unacceptable for
    the field (longer than it, say: ``400 Application_FilterErrorException``); such a group is split
    until the refused values stand alone, they are returned in ``refused`` with NAV's message, and
    every other value is still looked up. Only a failure that is not about a value (NAV down,
    credentials, an unpublished service) is raised."""
    result = Lookup()
    lock = threading.Lock()

    def one(group: list[Any]) -> None:
        try:
            rows = query(group)
        except NavError as exc:
            if not refuses_values(exc):
                raise
            if len(group) == 1:
                with lock:
                    result.refused[str(group[0])] = f"{exc.code}: {exc.message}"
                return
            half = len(group) // 2
            one(group[:half])
            one(group[half:])
            return
        with lock:
            result.rows.extend(rows)

    if len(groups) <= 1:
        for group in groups:
            one(group)
    else:
        with ThreadPoolExecutor(max_workers=min(max_concurrency, len(groups))) as pool:
            list(pool.map(one, groups))
    result.rows = first_by_no(result.rows)
    return result
