"""A process of ``test_instance_startup.py``: for each fresh home in turn, wait for the test's
"go", then open the instance the way the ``shipnav`` commands do and run ``shipnav_sync_job``.

Usage: ``python tests/support/instance_race_worker.py NAME HOME...``. For each HOME it writes
``HOME.ready-NAME`` once its imports are done, waits for ``HOME.go``, and prints one line per
home: ``ok HOME RUN_ID`` or ``FAILED HOME <error>``. The exit code is the number of failures.
"""

import os
import sys
import time
import traceback
from pathlib import Path

from shipnav_dagster.definitions import defs
from shipnav_dagster.instance import open_instance

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_on(home: Path, name: str) -> str:
    os.environ["SHIPNAV_DATABASE_URL"] = f"sqlite:///{home.parent / f'{home.name}-ledger-{name}.db'}"
    with open_instance(home) as instance:
        result = defs.resolve_job_def("shipnav_sync_job").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET, tags={"test/worker": name}
        )
    if not result.success:
        raise RuntimeError(f"run {result.run_id} failed")
    return result.run_id


def main(name: str, homes: list[str]) -> int:
    failures = 0
    for raw in homes:
        home = Path(raw)
        Path(f"{home}.ready-{name}").touch()
        deadline = time.monotonic() + 120
        while not Path(f"{home}.go").exists():
            if time.monotonic() > deadline:
                print(f"FAILED {home} no go signal", flush=True)
                return len(homes)
            time.sleep(0.002)
        try:
            print(f"ok {home} {run_on(home, name)}", flush=True)
        except Exception:
            failures += 1
            print(f"FAILED {home} {traceback.format_exc()[-1500:]!r}", flush=True)
    return failures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
