"""The Dagster instance a ``shipnav`` command runs on, opened with its storage set up once.

Without ``DAGSTER_HOME`` the command uses the local instance of the working directory, the one
``dagster job execute -m shipnav_dagster.definitions`` uses there: ``./dagster.yaml`` (the
checkout's file puts SQLite under ``./.shipnav/dagster``, or PostgreSQL when ``DAGSTER_PG_*`` is
set), with its local files (compute logs) under ``./.shipnav/dagster``. So its runs, and the
ledger claims they hold, are visible to every other run on that instance.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from shipnav_dagster.instance_lock import instance_init_lock

CONFIG_FILE = "dagster.yaml"


class InstanceHomeMissing(ValueError):
    """DAGSTER_HOME names no directory."""


@dataclass(frozen=True)
class InstanceLocation:
    """Where an instance keeps its local files (``home``) and reads ``dagster.yaml`` from."""

    home: Path
    config_dir: Path
    from_dagster_home: bool

    @property
    def config_file(self) -> Path | None:
        path = self.config_dir / CONFIG_FILE
        return path if path.is_file() else None

    def describe(self) -> str:
        """One line for the operator: which instance, and how to pick another."""
        config = self.config_file
        read = f"configured by {config}" if config else "Dagster's default configuration"
        if self.from_dagster_home:
            return f"the Dagster instance of DAGSTER_HOME={self.home} ({read})"
        return f"the local Dagster instance in {self.home} ({read}; set DAGSTER_HOME to use another instance)"


def locate_instance(home: str | Path | None = None) -> InstanceLocation:
    """``home`` if given, else ``$DAGSTER_HOME``, else the working directory's local instance."""
    if home is not None:
        folder = Path(home).resolve()
        return InstanceLocation(home=folder, config_dir=folder, from_dagster_home=False)
    env_home = os.environ.get("DAGSTER_HOME")
    if env_home:
        folder = Path(env_home).resolve()
        if not folder.is_dir():
            # As Dagster's own commands do: a mistyped DAGSTER_HOME must not become a new instance.
            raise InstanceHomeMissing(
                f"DAGSTER_HOME={env_home} is not a directory; create it with its dagster.yaml, or "
                "unset DAGSTER_HOME to use the local instance of the working directory"
            )
        return InstanceLocation(home=folder, config_dir=folder, from_dagster_home=True)
    cwd = Path.cwd().resolve()
    local = cwd / ".shipnav" / "dagster"
    config_dir = cwd if (cwd / CONFIG_FILE).is_file() else local
    return InstanceLocation(home=local, config_dir=config_dir, from_dagster_home=False)


def open_instance(location: InstanceLocation | str | Path | None = None) -> dg.DagsterInstance:
    """The instance at ``location`` (see ``locate_instance``), created under the folder's lock.

    Use it as a context manager (``with open_instance() as instance:``) so it is disposed.
    """
    if not isinstance(location, InstanceLocation):
        location = locate_instance(location)
    with instance_init_lock(location.home):
        ref = InstanceRef.from_dir(str(location.home), config_dir=str(location.config_dir))
        return dg.DagsterInstance.from_ref(ref)
