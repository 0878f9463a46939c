"""The local Dagster instances shipnav creates (``shipnav demo``, ``shipnav dev``): a folder with
a ``dagster.yaml``, emptied at every start, and never a folder shipnav did not make."""

import shutil
from pathlib import Path

from shipnav_dagster.cli.common import CommandError
from shipnav_dagster.instance_lock import LOCK_FILE_NAME, instance_init_lock

MARK = "# Written by `shipnav"

INSTANCE_YAML = """\
{mark} {command}`: a local Dagster instance (SQLite in this folder, with the ledger), emptied
# at every start. Telemetry is off, and so is the "join the Dagster community" dialog (nux) that
# would cover the first page of the UI.
telemetry:
  enabled: false
nux:
  enabled: false
concurrency:
  runs:
    tag_concurrency_limits:
      # Every job that writes to NAV carries this tag: two writers never run at once.
      - key: shipnav/writes-nav
        value: "true"
        limit: 1
"""


def prepare_home(home: Path, command: str) -> Path:
    """``home`` emptied and given the instance's ``dagster.yaml``; its absolute path.

    A fresh instance each time: the sandbox behind it is seeded anew at every start, so runs and
    ledger rows of an earlier sandbox would only mislead. Emptied under the folder's instance
    lock, which is kept (a process waiting on it would otherwise lock a deleted file while the
    next one creates a new one). A folder with files but no ``dagster.yaml`` written by shipnav is
    refused, never emptied."""
    home = home.resolve()
    if home.exists() and not _made_by_shipnav(home):
        raise CommandError(
            f"{home} is not empty and was not made by shipnav (its dagster.yaml does not start "
            f"with {MARK!r}); choose another --home, or remove it yourself"
        )
    with instance_init_lock(home) as lock_file:
        for child in home.iterdir():
            if child == lock_file:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        (home / "dagster.yaml").write_text(INSTANCE_YAML.format(mark=MARK, command=command))
    return home


def _made_by_shipnav(home: Path) -> bool:
    if not home.is_dir():
        return False
    if all(child.name == LOCK_FILE_NAME for child in home.iterdir()):
        return True
    config = home / "dagster.yaml"
    return config.is_file() and config.read_text(errors="replace").startswith(MARK)
