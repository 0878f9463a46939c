"""Which NAV product shipnav writes to, as far as the settings tell: it decides whether posted
shipments (page 130) can be written. NAV 2013-2018's page 130 has Shipping Agent, Agent Service
and Package Tracking No. editable (codeunit 391 "Shipment Header - Edit" runs on modify);
Business Central's shows them with Editable = false, and OData cannot write them."""

from urllib.parse import urlsplit

# Business Central online serves its web services from this domain (on-premises servers have
# their own host names, so there only NAV_PLATFORM or NAV's first refusal tells).
BC_ONLINE_DOMAIN = "businesscentral.dynamics.com"


def posted_shipments_writable(nav_platform: str, nav_odata_url: str | None) -> bool | None:
    """NAV_PLATFORM, else what the URL says; None: not known until NAV answers a write."""
    if nav_platform != "auto":
        return nav_platform == "nav"
    host = urlsplit(nav_odata_url or "").hostname or ""
    return False if host.endswith(BC_ONLINE_DOMAIN) else None
