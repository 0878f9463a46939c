"""Dagster instance storage that is PostgreSQL when DAGSTER_PG_* is set and local SQLite otherwise.

The repository-root ``dagster.yaml`` is read by every ``dagster`` command run from the checkout
without ``DAGSTER_HOME`` (it becomes the config of a temporary instance). A plain ``postgres``
block there would make ``dagster job execute -m shipnav_dagster.definitions -j shipnav_sync_job``
fail on any machine without PostgreSQL variables, although the contract promises that command
works from the shipnav environment alone. Production uses ``deploy/dagster.yaml``, which insists
on PostgreSQL.
"""

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dagster import Field
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from shipnav_dagster.instance_lock import instance_init_lock

log = logging.getLogger("shipnav")

# SQLAlchemy 2.1 makes postgresql:// mean psycopg 3; dagster-postgres needs psycopg2.
PG_SCHEME = "postgresql+psycopg2"


def postgres_url_from_env(environ: dict[str, str] | None = None) -> str | None:
    """DAGSTER_PG_URL, or a URL assembled from DAGSTER_PG_HOST/PORT/DB/USER/PASSWORD."""
    env = os.environ if environ is None else environ
    url = env.get("DAGSTER_PG_URL")
    if url:
        scheme, sep, rest = url.partition("://")
        return f"{PG_SCHEME}://{rest}" if sep and scheme in ("postgres", "postgresql") else url
    host = env.get("DAGSTER_PG_HOST")
    if not host:
        return None
    user = quote(env.get("DAGSTER_PG_USER", "postgres"), safe="")
    password = env.get("DAGSTER_PG_PASSWORD", "")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    port = env.get("DAGSTER_PG_PORT", "5432")
    db = env.get("DAGSTER_PG_DB", "dagster")
    return f"{PG_SCHEME}://{auth}@{host}:{port}/{db}"


def sqlite_base_dir() -> str:
    home = os.environ.get("DAGSTER_HOME")
    base = Path(home) if home else Path.cwd() / ".shipnav" / "dagster"
    return str(base)


class PostgresWhenConfiguredStorage(DagsterStorage, ConfigurableClass):
    """Never instantiated: ``from_config_value`` builds the PostgreSQL or SQLite storage the
    environment asks for (Dagster checks the configured class is a DagsterStorage subclass)."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"sqlite_base_dir": Field(str, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> DagsterStorage:
        url = postgres_url_from_env()
        if url is not None:
            from dagster_postgres import DagsterPostgresStorage

            return DagsterPostgresStorage(postgres_url=url, inst_data=inst_data)
        base_dir = config_value.get("sqlite_base_dir") or sqlite_base_dir()
        log.info("DAGSTER_PG_* not set: Dagster runs are stored in SQLite under %s", base_dir)
        # Two processes creating the SQLite tables at once can crash one of them or stamp
        # alembic_version twice (instance_lock.py); `dagster job execute` comes through here.
        with instance_init_lock(base_dir):
            return DagsterSqliteStorage.from_local(base_dir, inst_data=inst_data)
