"""The URL a run fetches for a webhook notification. Pure.

The notification's ``resource_url`` names the records; how they are fetched is shipnav's choice:
its page size (a ``resource_url`` with ``pageSize=1`` would otherwise cost one request per
record) and the shipment items the write-back needs. Every other parameter is kept as sent, byte
for byte; the host and path are untouched, and were checked by ``policy.resource_url_problem``.
"""

from urllib.parse import unquote_plus, urlsplit, urlunsplit

# ShipStation V1's largest pageSize for /shipments and /orders.
MAX_PAGE_SIZE = 500


def fetch_url(resource_url: str, page_size: int = MAX_PAGE_SIZE) -> str:
    """``resource_url`` with ``pageSize=page_size`` (whatever it said, in any letter case) and,
    where it asked for ``includeShipmentItems=False``, the items included."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    parts = urlsplit(resource_url)
    kept = []
    for field in parts.query.split("&") if parts.query else []:
        name, sep, value = field.partition("=")
        decoded = unquote_plus(name).lower()
        if decoded == "pagesize":
            continue  # replaced below, including spellings such as page%53ize
        if decoded == "includeshipmentitems" and unquote_plus(value).lower() == "false":
            field = f"{name}{sep}True"
        kept.append(field)
    kept.append(f"pageSize={page_size}")
    return urlunsplit(parts._replace(query="&".join(kept)))
