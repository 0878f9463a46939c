"""``shipnav check`` for the NAV product: NAV 2013-2018 or Business Central, and so whether
posted shipments are written (from NAV_PLATFORM, the URL, or what the ledger learned)."""

from shipnav_dagster.cli.check.report import CheckResult, ok, warn
from shipnav_dagster.nav.platform import posted_shipments_writable
from shipnav_dagster.settings import Settings


def platform_result(nav_platform: str, odata_url: str | None, learned: str | None) -> CheckResult:
    """Which NAV it is and whether posted shipments can be written: from NAV_PLATFORM, the URL,
    or what the ledger learned from NAV's refusal. Never found out by writing."""
    writable = posted_shipments_writable(nav_platform, odata_url)
    if nav_platform == "nav":
        return ok("NAV", "NAV_PLATFORM=nav (NAV 2013-2018): posted shipments are written too")
    if nav_platform == "bc" or writable is False:
        why = "NAV_PLATFORM=bc" if nav_platform == "bc" else "Business Central online (by its host)"
        return ok(
            "NAV",
            f"{why}: posted shipments are read-only there, so shipnav writes the sales order only (the "
            "header carries the label the next posting copies)",
        )
    if learned:
        return ok("NAV", f"posted shipments are read-only here (learned: {learned}); set NAV_PLATFORM=bc")
    return warn(
        "NAV",
        "NAV 2013-2018 or Business Central: not known until the first write to a posted shipment",
        "set NAV_PLATFORM=nav (NAV 2013-2018) or NAV_PLATFORM=bc (Business Central)",
    )


def learned_platform(settings: Settings) -> str | None:
    """What the ledger learned from NAV (read only; a missing ledger is not created)."""
    from shipnav_dagster.ledger import facts
    from shipnav_dagster.ledger.repository import Ledger
    from shipnav_dagster.ledger.secret_store import sqlite_file_missing

    try:
        url = settings.database_url
        if sqlite_file_missing(url):
            return None
        ledger = Ledger(url)
        try:
            fact = facts.get(ledger, facts.POSTED_SHIPMENTS_READ_ONLY)
        finally:
            ledger.dispose()
    except Exception:  # the ledger has its own check line; this one only reads a hint from it
        return None
    if fact is None or fact.value != "true":
        return None
    return f"{fact.detail} on {fact.learned_at:%Y-%m-%d}"
