"""Side by side in one run: the naive per-event flow, shipnav without ``$batch``, shipnav with it.

Each runs against its own sandbox process built from the same seed (Business Central, 20 ms a
request, ShipStation's 40 a minute): ``naive_flow.py``, then ``sync_bench.py --mode job`` with
``--batch off`` and ``--batch auto``. The floor is the job's (sync_bench.py's docstring says how
it is counted; with ``$batch`` the writes' floor is one request per 100 changed orders), and the
naive flow is measured against the floor of the same work without ``$batch``.

    .venv/bin/python bench/compare.py --n 1000 --n 10000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from naive_flow import run_naive  # bench scripts are not a package: found by the path above
from sync_bench import Sandbox, parse_args  # the same

HERE = Path(__file__).resolve().parent


def product(n: int, batch: str, latency: float, tmp: Path) -> dict[str, Any]:
    out = tmp / f"product-{n}-{batch}.json"
    command = [
        sys.executable,
        str(HERE / "sync_bench.py"),
        *("--n", str(n), "--mode", "job", "--platform", "bc", "--batch", batch),
        *("--latency-ms", str(latency), "--summary-json", str(out)),
    ]
    code = subprocess.call(command, stdout=subprocess.DEVNULL)
    summary: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    summary["exit"] = code
    return summary


def naive(n: int, latency: float) -> dict[str, Any]:
    args = parse_args(["--n", str(n), "--platform", "bc", "--latency-ms", str(latency)])
    args.ss_rate_limit, args.nav_auth = 40, "basic"
    sandbox = Sandbox(args)
    try:
        result = run_naive(sandbox.env)
    finally:
        sandbox.close()
    result["orders"] = sandbox.facts["orders_to_write"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, action="append", help="shipments (repeat for several sizes)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    sizes = args.n or [1000]
    rows = []
    with tempfile.TemporaryDirectory(prefix="shipnav-compare-") as tmp:
        for n in sizes:
            off = product(n, "off", args.latency_ms, Path(tmp))
            on = product(n, "auto", args.latency_ms, Path(tmp))
            flow = naive(n, args.latency_ms)
            calls = sum(flow["calls"].values())
            rows.append(
                (n, "naive per-event flow", flow["wall"], off.get("floor"), calls, flow["orders"], "-")
            )
            for name, run in (("shipnav, NAV_BATCH=off", off), ("shipnav, $batch", on)):
                rows.append(
                    (
                        n,
                        name,
                        run.get("wall"),
                        run.get("floor"),
                        run.get("calls"),
                        run.get("written"),
                        run.get("peak_rss_mb"),
                    )
                )
            print(f"N={n} done", file=sys.stderr, flush=True)
    print("| shipments | flow | wall | floor | wall/floor | calls | calls per written order | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for n, name, wall, floor, calls, orders, rss in rows:
        ratio = f"{wall / floor:.2f}x" if wall and floor else "-"
        per = f"{calls / orders:.3f}" if calls and orders else "-"
        rss_text = f"{rss} MB" if rss != "-" else "-"
        print(f"| {n:,} | {name} | {wall} s | {floor} s | {ratio} | {calls} | {per} | {rss_text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
