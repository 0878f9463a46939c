"""Shared fixtures: the sandbox servers on loopback, seeded worlds, and the test PostgreSQL."""

import os
import uuid
from collections.abc import Iterator

import pytest

from shipnav_dagster.sandbox.server import SandboxServers, running_sandbox
from shipnav_dagster.sandbox.state import SandboxWorld

PG_URL = os.environ.get("SHIPNAV_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def sandbox_servers() -> Iterator[SandboxServers]:
    with running_sandbox(SandboxWorld()) as servers:
        yield servers


@pytest.fixture
def empty_world(sandbox_servers: SandboxServers) -> SandboxWorld:
    """A world with no data at all (tests add exactly what they need), served by the sandbox."""
    world = SandboxWorld()
    sandbox_servers.world = world
    return world


@pytest.fixture
def seeded_world(sandbox_servers: SandboxServers) -> SandboxWorld:
    """The realistic generated shop, served by the sandbox."""
    from shipnav_dagster.sandbox.seed import build_world

    world = build_world(seed=7)
    sandbox_servers.world = world
    return world


@pytest.fixture
def sandbox(sandbox_servers: SandboxServers) -> SandboxServers:
    """The running servers; use together with ``empty_world`` or ``seeded_world``."""
    return sandbox_servers


def _pg_available() -> str | None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means "not reachable"; the reason is reported
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    problem = _pg_available()
    if problem is not None:
        message = f"PostgreSQL at SHIPNAV_TEST_PG_URL not reachable ({problem})"
        if os.environ.get("SHIPNAV_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return PG_URL


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, as a URL whose search_path points at it."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'drop schema "{schema}" cascade'))
    engine.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the PostgreSQL fixtures carry the ``postgres`` marker (CI counts them)."""
    for item in items:
        if {"pg_url", "pg_schema_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
