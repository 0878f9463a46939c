"""Reading V2 list envelopes ``{<items>, total, page, pages, links}``, and when to ask for more. Pure.

https://docs.shipstation.com/apis/shipengine/docs/reference/pagination: ``page`` from 1,
``page_size``, ``sort_dir`` (desc by default), and an envelope whose ``links.next`` is present only
while another page exists. None of ``total``, ``pages`` and ``links`` is trusted alone:

* the records seen are counted by id, and paging stops once they reach the ``total`` of the latest
  page (a total that grows while new labels arrive keeps the scan going);
* without a ``total``, another page is asked for while ``links.next`` names one, ``page < pages``
  or the page came back full;
* an empty page ends the scan, and a page that repeats the previous one is refused (the server
  ignores paging; looping would never end).

``links.next.href`` is read as a signal only and never requested: the client builds each page's
URL itself, on the host it was configured with.
"""

from typing import Any

from shipnav_dagster.shipstation.http import int_or_none

# What each list endpoint calls its items, and the id field of each.
COLLECTIONS = {"labels": "label_id", "fulfillments": "fulfillment_id", "shipments": "shipment_id"}


def items_of(body: dict[str, Any], collection: str) -> list[Any]:
    value = body.get(collection)
    if isinstance(value, list):
        return value
    return []


def collection_of_path(path: str) -> str | None:
    """``/v2/labels`` -> ``labels`` (also ``/v2/labels/se-1`` and a base URL's own prefix)."""
    for name in reversed([p for p in path.split("/") if p]):
        if name in COLLECTIONS:
            return name
    return None


def record_id(item: Any, collection: str) -> Any:
    return item.get(COLLECTIONS[collection]) if isinstance(item, dict) else None


def has_next_link(body: dict[str, Any]) -> bool:
    links = body.get("links")
    nxt = links.get("next") if isinstance(links, dict) else None
    return isinstance(nxt, dict) and bool(nxt.get("href"))


def has_more(body: dict[str, Any], *, page: int, count: int, page_size: int, seen: int) -> bool:
    """Whether another page may hold records, after page ``page`` brought ``count`` items and
    ``seen`` distinct records have been read in all."""
    if count == 0:
        return False
    total = int_or_none(body.get("total"))
    if total is not None:
        return seen < total
    pages = int_or_none(body.get("pages"))
    return has_next_link(body) or (pages is not None and page < pages) or count >= page_size


def total_of(body: dict[str, Any]) -> int | None:
    return int_or_none(body.get("total"))
