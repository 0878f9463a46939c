"""Paging through V2 lists ``{<items>, total, page, pages, links}``. Pure but for the fetch it is given.

https://docs.shipstation.com/apis/shipengine/docs/reference/pagination: ``page`` from 1,
``page_size``, ``sort_dir`` (desc by default), and an envelope whose ``links.next`` is present only
while another page exists. Whether more records wait is decided by none of ``total``, ``pages``
and ``links`` alone:

* records are counted as read, and paging stops once they reach the ``total`` the latest page
  reports (a total that grows while new labels arrive keeps the scan going);
* without a ``total``, another page is asked for while ``links.next`` names one, ``page < pages``
  or the page came back full;
* an empty page ends the scan, and a page that repeats the previous one is refused (the server
  ignores paging; looping would never end).

``links.next.href`` is a signal only and never requested: the client builds every URL itself, on
the host it was configured with.

Lists sorted ascending on a time (labels by ``created_at``, shipments by ``modified_at``,
fulfillments by ``created_at``) are read with :func:`after_last`: the next page is the first page
of the list from the last record's time on (inclusive; records read twice are dropped), not page
``n + 1``. A record that leaves the list mid-scan (a label voided between two pages) would move
every later record one place forward, and page ``n + 1`` would skip one; a record modified
mid-scan moves to the end. Neither can hide a record from a scan that starts each page at the
last time it read. Where a whole page shares one time, the page number moves on instead.
"""

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from shipnav_dagster.shipstation.errors import ShipStationError
from shipnav_dagster.shipstation.http import int_or_none
from shipnav_dagster.shipstation.v2.timeutil import FILTER_FORMAT, parse_instant

# What each list endpoint calls its items, and the id field of each.
COLLECTIONS = {"labels": "label_id", "fulfillments": "fulfillment_id", "shipments": "shipment_id"}
MAX_PAGES = 10_000

# (query without page and page_size) -> the page's body; the client adds page and page size.
FetchPage = Callable[[dict[str, str], int], dict[str, Any]]


def collection_of_path(path: str) -> str | None:
    """``/v2/labels`` -> ``labels`` (also ``/v2/labels/se-1``)."""
    for name in reversed([p for p in path.split("/") if p]):
        if name in COLLECTIONS:
            return name
    return None


def items_of(body: dict[str, Any], collection: str) -> list[Any]:
    value = body.get(collection)
    return value if isinstance(value, list) else []


def has_next_link(body: dict[str, Any]) -> bool:
    links = body.get("links")
    nxt = links.get("next") if isinstance(links, dict) else None
    return isinstance(nxt, dict) and bool(nxt.get("href"))


def has_more(body: dict[str, Any], *, page: int, count: int, page_size: int, read: int) -> bool:
    """Whether another page may hold records, after page ``page`` brought ``count`` items and
    ``read`` records have been read from this list (this query) in all."""
    if count == 0:
        return False
    total = int_or_none(body.get("total"))
    if total is not None:
        return read < total
    pages = int_or_none(body.get("pages"))
    return has_next_link(body) or (pages is not None and page < pages) or count >= page_size


class _Pages:
    """What one scan has read: ids for the dedupe, the previous page for the loop guard."""

    def __init__(self, collection: str, path: str) -> None:
        self.id_field = COLLECTIONS[collection]
        self.path = path
        self.seen: set[Any] = set()
        self.previous: tuple[Any, ...] | None = None

    def fresh(self, items: list[Any], page: int, *, next_page: bool = True) -> list[Any]:
        """The records not read before. ``next_page``: this page was asked as the page after the
        previous one, so the same records again mean the server ignores ``page``."""
        ids = tuple(item.get(self.id_field) if isinstance(item, dict) else None for item in items)
        if next_page and any(i is not None for i in ids) and ids == self.previous:
            raise ShipStationError(
                f"page {page} repeated the page before it; the server ignores paging, refusing to loop",
                method="GET",
                path=self.path,
            )
        self.previous = ids
        fresh = [item for item, i in zip(items, ids, strict=True) if i is None or i not in self.seen]
        self.seen.update(i for i in ids if i is not None)
        return fresh


def by_page(
    fetch: FetchPage, params: dict[str, str], collection: str, path: str, page_size: Callable[[], int]
) -> Iterator[list[Any]]:
    """Page 1, 2, … of one query: the new records of each page."""
    pages = _Pages(collection, path)
    read = 0
    for page in range(1, MAX_PAGES + 1):
        body = fetch(params, page)
        items = items_of(body, collection)
        fresh = pages.fresh(items, page, next_page=page > 1)
        if fresh:
            yield fresh
        read += len(items)
        if not has_more(body, page=page, count=len(items), page_size=page_size(), read=read):
            return
    raise ShipStationError(f"more than {MAX_PAGES} pages; stopping", method="GET", path=path)


def after_last(
    fetch: FetchPage,
    params: dict[str, str],
    collection: str,
    path: str,
    page_size: Callable[[], int],
    *,
    start_param: str,
    time_field: str,
) -> Iterator[list[Any]]:
    """A list sorted ascending on ``time_field``, each page asked from the last time read on
    (``start_param``); the new records of each page."""
    pages = _Pages(collection, path)
    query = dict(params)
    page, read, next_page = 1, 0, False
    for _ in range(MAX_PAGES):
        body = fetch(query, page)
        items = items_of(body, collection)
        fresh = pages.fresh(items, page, next_page=next_page)
        if fresh:
            yield fresh
        read += len(items)
        if not has_more(body, page=page, count=len(items), page_size=page_size(), read=read):
            return
        start = _latest(items, time_field)
        if fresh and start is not None and start > query[start_param]:
            query[start_param], page, read, next_page = start, 1, 0, False
        else:  # nothing new here, or the whole page shares one time: the next page of this query
            page, next_page = page + 1, True
    raise ShipStationError(f"more than {MAX_PAGES} pages; stopping", method="GET", path=path)


def _latest(items: list[Any], field: str) -> str | None:
    """The latest ``field`` of the page, as a filter bound (whole seconds, floored: inclusive)."""
    latest: datetime | None = None
    for item in items:
        value = item.get(field) if isinstance(item, dict) else None
        if not isinstance(value, str):
            continue
        try:
            when = parse_instant(value)
        except ValueError:
            continue
        latest = when if latest is None else max(latest, when)
    return None if latest is None else latest.strftime(FILTER_FORMAT)
