"""Sorting, paging and the V2 list envelope ``{<items>, total, page, pages, links}``.

``links`` always has the four keys the spec's ``pagination_link`` requires; ``first`` and
``last`` carry an ``href``, ``prev`` and ``next`` are ``{}`` when there is no such page (as
captured responses show: ``"prev": {}, "next": {}``). Each href repeats the request's own query
(unknown parameters included) with ``page`` and ``page_size`` set, as in
``/v2/labels?batch_id=se-64616278&page=1&page_size=25``. A page past the last one is empty
(the spec's ``page`` parameter says so).
https://docs.shipstation.com/apis/shipengine/docs/reference/pagination
"""

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request

T = TypeVar("T")
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def sort_by(
    items: Sequence[T], key: Callable[[T], datetime | None], tiebreak: Callable[[T], int], descending: bool
) -> list[T]:
    """Sorted on ``key``; items without the value sort first ascending, the id breaks ties."""

    def full_key(item: T) -> tuple[bool, datetime, int]:
        value = key(item)
        return (value is not None, value or _EARLIEST, tiebreak(item))

    return sorted(items, key=full_key, reverse=descending)


def envelope(
    request: Request,
    collection: str,
    rows: Sequence[T],
    page: int,
    size: int,
    render: Callable[[T], dict[str, Any]],
    pages_minimum: int = 0,
) -> dict[str, Any]:
    """One page of ``rows`` (already filtered and sorted), rendered, in the V2 envelope.

    ``pages_minimum`` is 1 where the spec says so (``list_shipments_response_body`` has
    ``pages: minimum 1``; the label list allows 0).
    """
    total = len(rows)
    pages = max(math.ceil(total / size), pages_minimum)
    start = (page - 1) * size
    return {
        collection: [render(row) for row in rows[start : start + size]],
        "total": total,
        "page": page,
        "pages": pages,
        "links": links(request, page, size, pages),
    }


def links(request: Request, page: int, size: int, pages: int) -> dict[str, dict[str, str]]:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k.lower() not in ("page", "page_size")]
    base = f"{str(request.base_url).rstrip('/')}{request.url.path}"

    def href(number: int) -> dict[str, str]:
        return {"href": f"{base}?{urlencode([*kept, ('page', number), ('page_size', size)])}"}

    last = max(pages, 1)
    return {
        "first": href(1),
        "last": href(last),
        "prev": href(min(page - 1, last)) if page > 1 else {},
        "next": href(page + 1) if page < pages else {},
    }
