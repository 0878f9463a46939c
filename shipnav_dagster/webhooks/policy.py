"""Which webhook ``resource_url`` may be fetched with the ShipStation credentials. Pure.

A notification is only a URL; the run later GETs it with the API key (and secret), so a URL
anywhere else would hand the credentials to whoever sent it. Only the configured API host (or
V1's ``ssapiN`` shards), on its scheme and port, and only the collections these events point at
are allowed; the receiver checks on arrival and the run checks again before fetching. The same
rules hold for both API generations, each with its own events and collections: V1 SHIP_NOTIFY /
ORDER_NOTIFY point at ``/shipments`` / ``/orders``, V2 LABEL_CREATED_V2 at ``/v2/labels`` and
FULFILLMENT_SHIPPED_V2 at ``/v2/fulfillments``.
"""

import re
from urllib.parse import urlsplit

MAX_RESOURCE_URL_LENGTH = 2048
SHIPSTATION_V1_HOST = "ssapi.shipstation.com"
# V1 notifications name shard hosts too: ssapi11.shipstation.com, ssapi7.shipstation.com...
_SHARD_HOST = re.compile(r"ssapi[0-9]{1,4}\.shipstation\.com")
# RFC 3986 characters only: no spaces, controls, backslashes or non-ASCII (IDNA look-alikes,
# full-width dots) that different URL parsers would read differently.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_NETLOC = re.compile(r"(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
# The collections SHIP_NOTIFY / ORDER_NOTIFY point at; no dots or escapes, so no "..".
_RESOURCE_PATH = re.compile(r"/(?:shipments|orders)(?:/[A-Za-z0-9_\-]+)*/?")
_DEFAULT_PORTS = {"http": 80, "https": 443}

V1_TYPES = frozenset({"SHIP_NOTIFY", "ITEM_SHIP_NOTIFY", "ORDER_NOTIFY", "ITEM_ORDER_NOTIFY"})
# The V2 list each event's resource_url names (docs/api-notes.md).
V2_COLLECTIONS = {"LABEL_CREATED_V2": "labels", "FULFILLMENT_SHIPPED_V2": "fulfillments"}
V2_TYPES = frozenset(V2_COLLECTIONS)
_V2_PATH = re.compile(r"/v2/(?P<collection>labels|fulfillments)(?:/[A-Za-z0-9_\-]+)?/?")


def resource_types(generation: str) -> frozenset[str]:
    """The notification types the receiver accepts for the configured API generation."""
    return V2_TYPES if generation == "v2" else V1_TYPES


def resource_url_problem(
    url: object, api_url: str, generation: str = "v1", resource_type: str | None = None
) -> str | None:
    """Why ``url`` must not be fetched with the credentials of ``api_url``; None if it may.

    ``resource_type`` (V2) also ties the path to the list that event names."""
    if not isinstance(url, str) or not url:
        return "not a string"
    if len(url) > MAX_RESOURCE_URL_LENGTH:
        return f"longer than {MAX_RESOURCE_URL_LENGTH} characters"
    if not _URL_CHARS.fullmatch(url):
        return "contains characters that are not allowed in a URL"
    api = _origin(api_url)
    if api is None:
        return "SHIPSTATION_API_URL is not an http(s) URL"
    api_scheme, api_host, api_port, api_path = api
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != api_scheme:
        return f"scheme {scheme or '(none)'!r} is not {api_scheme!r}"
    if "@" in parts.netloc:
        return "carries user information"
    netloc = _NETLOC.fullmatch(parts.netloc)
    if netloc is None:
        return "has no valid host"
    host = netloc["host"].lower()
    port = int(netloc["port"]) if netloc["port"] else _DEFAULT_PORTS[scheme]
    if not _host_allowed(host, api_host):
        return f"host {host!r} is not the ShipStation API host"
    if port != api_port:
        return f"port {port} is not {api_port}"
    if parts.fragment:
        return "has a fragment"
    if not parts.path.startswith(api_path + "/"):
        return "path is outside the API"
    rest = parts.path[len(api_path) :]
    if generation == "v2":
        found = _V2_PATH.fullmatch(rest)
        wanted = V2_COLLECTIONS.get(resource_type or "")
        if found is None or (wanted is not None and found["collection"] != wanted):
            return f"path is not /v2/{wanted}" if wanted else "path is not /v2/labels or /v2/fulfillments"
        return None
    if not _RESOURCE_PATH.fullmatch(rest):
        return "path is not /shipments or /orders"
    return None


def is_allowed_resource_url(url: object, api_url: str, generation: str = "v1") -> bool:
    """Whether a webhook ``resource_url`` may be fetched with the ShipStation credentials."""
    return resource_url_problem(url, api_url, generation) is None


def _origin(api_url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, effective port, path without trailing slash) of the configured API URL."""
    parts = urlsplit(api_url.strip())
    scheme = parts.scheme.lower()
    netloc = _NETLOC.fullmatch(parts.netloc)
    if scheme not in _DEFAULT_PORTS or netloc is None:
        return None
    port = int(netloc["port"]) if netloc["port"] else _DEFAULT_PORTS[scheme]
    # A V2 base URL given with its /v2 is the same API (the client drops it too).
    return scheme, netloc["host"].lower(), port, parts.path.rstrip("/").removesuffix("/v2")


def _host_allowed(host: str, api_host: str) -> bool:
    if host == api_host:
        return True
    # Shards only stand in for the real V1 host, never for a proxy or sandbox someone configured.
    return api_host == SHIPSTATION_V1_HOST and _SHARD_HOST.fullmatch(host) is not None
