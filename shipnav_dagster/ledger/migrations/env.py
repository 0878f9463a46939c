"""Alembic environment for the ledger: always run programmatically by ``ledger.migrations.upgrade``
with an open connection; the version table is ``shipnav_alembic_version`` so a database shared
with Dagster's own storage (which uses ``alembic_version``) keeps the two apart."""

from alembic import context

from shipnav_dagster.ledger.schema import metadata

VERSION_TABLE = "shipnav_alembic_version"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters tables by copying them; batch mode does that for us
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
