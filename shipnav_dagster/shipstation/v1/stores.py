"""The V1 ``GET /stores`` answer, read only for ``shipnav check`` (which stores the key sees)."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Store:
    store_id: int | None
    store_name: str | None
    active: bool | None


def parse_store(item: dict[str, Any]) -> Store:
    """Lenient: a store the check cannot describe fully is still listed."""
    store_id = item.get("storeId")
    name = item.get("storeName")
    active = item.get("active")
    return Store(
        store_id=store_id if isinstance(store_id, int) and not isinstance(store_id, bool) else None,
        store_name=str(name) if name not in (None, "") else None,
        active=active if isinstance(active, bool) else None,
    )
