"""The naive per-event flow, for comparison with shipnav. Not product code and not a test.

What a first integration usually looks like (one event at a time, as a webhook handler or a
no-code "find record, get record, update record" flow would do it): list the new labels, then
for every label, one request after the other,

1. one NAV lookup: ``SalesOrder?$filter=External_Document_No eq '<orderNumber>'``;
2. GET the order it found by its key (its current values and ETag);
3. one PATCH of ``Package_Tracking_No`` with that ETag.

V1's ``/shipments`` carries ``orderNumber``, so the flow needs no ShipStation call per label: its
three calls per label are NAV's. It does no de-duplication (an order with two labels is written
twice) and no batching; its ShipStation listing is the product's (500 a page).

    .venv/bin/python bench/naive_flow.py --n 1000      # its own sandbox, as sync_bench.py starts it
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import PAGE, Sandbox, parse_args  # bench scripts are not a package: found by the path above


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _key(no: str) -> str:
    return f"(Document_Type='Order',No={quote(_literal(no), safe='')})"


def run_naive(env: dict[str, str], lookback: timedelta = timedelta(days=7)) -> dict[str, Any]:
    """The flow above against the servers ``env`` points to (V1 ShipStation, NAV with Basic)."""
    ss = httpx.Client(
        base_url=env["SHIPSTATION_API_URL"],
        auth=(env["SHIPSTATION_API_KEY"], env["SHIPSTATION_API_SECRET"]),
        timeout=60,
    )
    nav = httpx.Client(
        base_url=env["NAV_ODATA_URL"].rstrip("/") + "/",
        auth=(env["NAV_USERNAME"], env["NAV_PASSWORD"]),
        timeout=60,
    )
    calls = {"shipstation": 0, "nav_lookup": 0, "nav_get": 0, "nav_patch": 0}
    failed = written = 0
    started = time.perf_counter()
    with ss, nav:
        labels: list[dict[str, Any]] = []
        # ShipStation V1 reads windows in Pacific wall-clock; a wide window takes every label.
        since = (datetime.now(UTC) - lookback - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
        page = 1
        while True:
            response = ss.get(
                "/shipments",
                params={"createDateStart": since, "page": page, "pageSize": PAGE, "sortBy": "CreateDate"},
            )
            calls["shipstation"] += 1
            if response.status_code == 429:  # wait what the server says, then ask again
                time.sleep(float(response.headers.get("X-Rate-Limit-Reset", "1")) + 1)
                continue
            response.raise_for_status()
            body = response.json()
            labels.extend(s for s in body["shipments"] if s and not s.get("voided"))
            if page >= int(body.get("pages") or 0) or not body["shipments"]:
                break
            page += 1
        for label in labels:
            found = nav.get(
                "SalesOrder",
                params={"$filter": f"External_Document_No eq {_literal(str(label['orderNumber']))}"},
            )
            calls["nav_lookup"] += 1
            rows = found.json().get("value", []) if found.status_code == 200 else []
            if len(rows) != 1:
                failed += 1
                continue
            order = nav.get("SalesOrder" + _key(rows[0]["No"]))
            calls["nav_get"] += 1
            patched = nav.patch(
                "SalesOrder" + _key(rows[0]["No"]),
                json={"Package_Tracking_No": label["trackingNumber"]},
                headers={"If-Match": order.json()["@odata.etag"]},
            )
            calls["nav_patch"] += 1
            if patched.status_code in (200, 204):
                written += 1
            else:
                failed += 1
    return {
        "wall": round(time.perf_counter() - started, 2),
        "labels": len(labels),
        "written": written,
        "failed": failed,
        "calls": calls,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.ss_rate_limit = args.ss_rate_limit or 40
    args.nav_auth = "basic"
    sandbox = Sandbox(args)
    try:
        result = run_naive(sandbox.env)
    finally:
        sandbox.close()
    total = sum(result["calls"].values())
    orders = sandbox.facts["orders_to_write"]
    print(
        f"naive per-event flow, N={args.n}: {result['wall']:.1f} s, {total} calls "
        f"{result['calls']}, {result['written']} PATCHes for {orders} orders, "
        f"{total / orders:.3f} calls per written order, {result['failed']} failed"
    )
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
