"""Text columns for what ShipStation sends, parsed records with versions and failure kinds, order
claims, the write journal and learned platform facts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
RECORD_TEXT = ("order_number", "order_key", "tracking_number", "carrier_code", "service_code")
ORDER_TEXT = ("order_number", "order_key", "ship_to_name", "bill_to_name", "order_status")


def upgrade() -> None:
    with op.batch_alter_table("shipnav_records") as batch:
        for name in RECORD_TEXT:
            batch.alter_column(name, type_=sa.Text(), existing_nullable=True)
        batch.alter_column("source_id", existing_type=sa.BigInteger(), nullable=True)
        batch.alter_column("created_at", existing_type=TS, nullable=True)
        batch.add_column(sa.Column("record", sa.Text(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("failure_kind", sa.String(16), nullable=True))
    with op.batch_alter_table("shipnav_ss_orders") as batch:
        for name in ORDER_TEXT:
            batch.alter_column(name, type_=sa.Text(), existing_nullable=True)
    op.create_table(
        "shipnav_order_claims",
        sa.Column("nav_order_no", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False, index=True),
        sa.Column("claimed_at", TS, nullable=False),
    )
    op.create_table(
        "shipnav_nav_journal",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("nav_order_no", sa.String(64), nullable=False, index=True),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_key", sa.String(128), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("record_keys", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("run_id", sa.String(64), nullable=False, index=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("settled_at", TS),
    )
    op.create_index("ix_shipnav_nav_journal_state", "shipnav_nav_journal", ["state"])
    op.create_table(
        "shipnav_facts",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("learned_at", TS, nullable=False),
        sa.Column("run_id", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("shipnav_facts")
    op.drop_index("ix_shipnav_nav_journal_state", table_name="shipnav_nav_journal")
    op.drop_table("shipnav_nav_journal")
    op.drop_table("shipnav_order_claims")
    with op.batch_alter_table("shipnav_ss_orders") as batch:
        for name in ORDER_TEXT:
            batch.alter_column(name, type_=sa.String(256), existing_nullable=True)
    with op.batch_alter_table("shipnav_records") as batch:
        batch.drop_column("failure_kind")
        batch.drop_column("version")
        batch.drop_column("record")
        for name in RECORD_TEXT:
            batch.alter_column(name, type_=sa.String(256), existing_nullable=True)
