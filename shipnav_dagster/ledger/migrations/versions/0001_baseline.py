"""The ledger as it was before migrations existed (frozen copy of its tables).

Revision ID: 0001
Revises:
Create Date: 2026-12-04

Ledgers created before this revision have these tables already: ``checkfirst`` leaves them as
they are, so they join the migration history here and upgrade in place.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> sa.MetaData:
    metadata = sa.MetaData()

    TS = sa.DateTime(timezone=True)

    # One row per ShipStation label (shipment:<id>) or fulfillment (fulfillment:<id>), upserted.
    sa.Table(
        "shipnav_records",
        metadata,
        sa.Column("record_key", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_id", sa.BigInteger, nullable=False),
        sa.Column("order_id", sa.BigInteger, index=True),
        sa.Column("order_number", sa.String(128)),
        sa.Column("order_key", sa.String(256)),
        sa.Column("tracking_number", sa.String(256)),
        sa.Column("carrier_code", sa.String(128)),
        sa.Column("service_code", sa.String(128)),
        sa.Column("ship_date", sa.Date),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("voided", sa.Boolean, nullable=False, default=False),
        sa.Column("void_date", TS),
        sa.Column("is_return", sa.Boolean, nullable=False, default=False),
        sa.Column("payload", sa.Text, nullable=False),  # the raw JSON as ShipStation sent it
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("seen_via", sa.String(16), nullable=False),  # poll | webhook | replay
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        # pending | written | already_correct | no_order_yet | ambiguous | parked | failed |
        # needs_attention | ignored | voided | invalid
        sa.Column("status", sa.String(24), nullable=False, index=True),
        sa.Column("status_reason", sa.Text),
        sa.Column("nav_order_no", sa.String(64), index=True),
        sa.Column("match_tier", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("next_attempt_at", TS),
        sa.Column("claimed_by_run", sa.String(64)),
        sa.Column("claimed_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_run_id", sa.String(64)),
        sa.Index("ix_shipnav_records_due", "status", "next_attempt_at"),
    )

    # ShipStation orders, for the matcher (order date, names, split parent) and the audit.
    sa.Table(
        "shipnav_ss_orders",
        metadata,
        sa.Column("order_id", sa.BigInteger, primary_key=True),
        sa.Column("order_number", sa.String(128)),
        sa.Column("order_key", sa.String(256)),
        sa.Column("order_date", sa.Date),
        sa.Column("ship_to_name", sa.String(256)),
        sa.Column("bill_to_name", sa.String(256)),
        sa.Column("parent_id", sa.BigInteger),
        sa.Column("order_status", sa.String(32)),
        sa.Column("modify_date", TS),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )

    # The NAV sales order as the matcher read it (with its ETag), so the write step needs no re-read.
    sa.Table(
        "shipnav_nav_orders",
        metadata,
        sa.Column("nav_order_no", sa.String(64), primary_key=True),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("fetched_at", TS, nullable=False),
        sa.Column("run_id", sa.String(64)),
    )

    sa.Table(
        "shipnav_cursors",
        metadata,
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("position", TS, nullable=False),  # end of the last window durably stored (UTC)
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("run_id", sa.String(64)),
    )

    sa.Table(
        "shipnav_match_decisions",
        metadata,
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("record_key", sa.String(64), nullable=False, index=True),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("tier", sa.Integer),
        sa.Column("nav_order_no", sa.String(64)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("candidates", sa.Text, nullable=False),  # JSON list of NAV order numbers seen
        sa.Column("run_id", sa.String(64), index=True),
        sa.Column("decided_at", TS, nullable=False),
    )

    # Planned and applied NAV changes, one row per entity field.
    sa.Table(
        "shipnav_nav_changes",
        metadata,
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("nav_order_no", sa.String(64), nullable=False, index=True),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_key", sa.String(128), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        # planned | applied | dry_run | skipped | failed
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("record_keys", sa.Text, nullable=False),  # JSON list
        sa.Column("run_id", sa.String(64), index=True),
        sa.Column("at", TS, nullable=False),
    )

    # Append-only history: nothing here is ever updated or deleted by the product.
    sa.Table(
        "shipnav_events",
        metadata,
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("at", TS, nullable=False),
        sa.Column("record_key", sa.String(64), index=True),
        sa.Column("nav_order_no", sa.String(64), index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),  # JSON: before/after values, candidates, error code...
        sa.Column("run_id", sa.String(64), index=True),
    )

    # Webhook notifications (SHIP_NOTIFY / ORDER_NOTIFY): stored by the receiver, drained by a run.
    sa.Table(
        "shipnav_webhook_inbox",
        metadata,
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_url", sa.String(2048), nullable=False),
        # sha256 of type + URL: a notification delivered twice is stored once.
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),  # pending | claimed | done | failed
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("claimed_by_run", sa.String(64)),
        sa.Column("claimed_at", TS),
        sa.Column("processed_at", TS),
        sa.Column("records_found", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Index("ix_shipnav_webhook_inbox_status", "status", "id"),
    )

    # Credentials stored with `shipnav secrets set NAME` (NAME = the environment variable it stands
    # in for), Fernet-encrypted with SHIPNAV_SECRET_KEY; never the plaintext.
    sa.Table(
        "shipnav_secrets",
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    return metadata


def upgrade() -> None:
    _tables().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    _tables().drop_all(op.get_bind(), checkfirst=True)
