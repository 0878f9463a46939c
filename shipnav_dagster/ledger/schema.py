"""Ledger tables (SQLAlchemy Core): the record-level audit trail, queues and poll cursors.

Dagster's run history says which code ran when; these tables say what happened to each
ShipStation record and each NAV field, and carry the Dagster run id that links the two.
"""

import sqlalchemy as sa

metadata = sa.MetaData()

TS = sa.DateTime(timezone=True)

# One row per ShipStation label (shipment:<id>) or fulfillment (fulfillment:<id>), upserted.
records = sa.Table(
    "shipnav_records",
    metadata,
    sa.Column("record_key", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("source_id", sa.BigInteger),  # None: the payload carried no readable id (invalid)
    sa.Column("order_id", sa.BigInteger, index=True),
    # Text, not VARCHAR(n): the ledger holds whatever ShipStation sends; what NAV cannot take is
    # parked by the plan with its reason, never refused by the database.
    sa.Column("order_number", sa.Text),
    sa.Column("order_key", sa.Text),
    sa.Column("tracking_number", sa.Text),
    sa.Column("carrier_code", sa.Text),
    sa.Column("service_code", sa.Text),
    sa.Column("ship_date", sa.Date),
    sa.Column("created_at", TS),  # None only for an invalid record
    sa.Column("voided", sa.Boolean, nullable=False, default=False),
    sa.Column("void_date", TS),
    sa.Column("is_return", sa.Boolean, nullable=False, default=False),
    sa.Column("payload", sa.Text, nullable=False),  # the raw JSON as ShipStation sent it
    sa.Column("payload_hash", sa.String(64), nullable=False),
    # The record as the adapter parsed it (core.model.ShipRecord as JSON), whatever API generation
    # it came from; None when the payload could not be parsed (status invalid, reason says why).
    sa.Column("record", sa.Text),
    # Grows with every change of the payload: an outcome is stored only if the record is still
    # the version the run decided it from (a concurrent poll may have changed it meanwhile).
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    # Why a failed record failed: "outage" (NAV down, throttling, credentials: not the record's
    # fault, taken by the next run that reaches NAV) or "record" (retried with backoff).
    sa.Column("failure_kind", sa.String(16)),
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
orders = sa.Table(
    "shipnav_ss_orders",
    metadata,
    sa.Column("order_id", sa.BigInteger, primary_key=True),
    sa.Column("order_number", sa.Text),
    sa.Column("order_key", sa.Text),
    sa.Column("order_date", sa.Date),
    sa.Column("ship_to_name", sa.Text),
    sa.Column("bill_to_name", sa.Text),
    sa.Column("parent_id", sa.BigInteger),
    sa.Column("order_status", sa.Text),
    sa.Column("modify_date", TS),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# The NAV sales order as the matcher read it (with its ETag), so the write step needs no re-read.
nav_orders = sa.Table(
    "shipnav_nav_orders",
    metadata,
    sa.Column("nav_order_no", sa.String(64), primary_key=True),
    sa.Column("entity", sa.Text, nullable=False),
    sa.Column("fetched_at", TS, nullable=False),
    sa.Column("run_id", sa.String(64)),
)

cursors = sa.Table(
    "shipnav_cursors",
    metadata,
    sa.Column("stream", sa.String(64), primary_key=True),
    sa.Column("position", TS, nullable=False),  # end of the last window durably stored (UTC)
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("run_id", sa.String(64)),
)

decisions = sa.Table(
    "shipnav_match_decisions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
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
changes = sa.Table(
    "shipnav_nav_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
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
events = sa.Table(
    "shipnav_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("record_key", sa.String(64), index=True),
    sa.Column("nav_order_no", sa.String(64), index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),  # JSON: before/after values, candidates, error code...
    sa.Column("run_id", sa.String(64), index=True),
)

# Webhook notifications (SHIP_NOTIFY / ORDER_NOTIFY): stored by the receiver, drained by a run.
inbox = sa.Table(
    "shipnav_webhook_inbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
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
# in for), Fernet-encrypted with SHIPNAV_SECRET_KEY; never the plaintext (ledger/secret_store.py).
secrets = sa.Table(
    "shipnav_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# One writer per NAV order across all runs: a run writes an order only while it holds its row.
# A holder whose Dagster run is no longer in progress has no claim (see Ledger.claim_orders).
order_claims = sa.Table(
    "shipnav_order_claims",
    metadata,
    sa.Column("nav_order_no", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("claimed_at", TS, nullable=False),
)

# The write journal: every PATCH is recorded as intended before it is sent and settled after,
# order by order, so a crash between the two is found and confirmed against NAV by a later run.
journal = sa.Table(
    "shipnav_nav_journal",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("nav_order_no", sa.String(64), nullable=False, index=True),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("entity_key", sa.String(128), nullable=False),
    sa.Column("changes", sa.Text, nullable=False),  # JSON: field -> value sent
    sa.Column("before", sa.Text, nullable=False),  # JSON: field -> value NAV held
    sa.Column("record_keys", sa.Text, nullable=False),  # JSON list
    # intended | applied | failed | confirmed (found in NAV after a crash) | not_applied
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("settled_at", TS),
    sa.Index("ix_shipnav_nav_journal_state", "state"),
)

# What shipnav has learned about the NAV it talks to (e.g. that posted shipments are read-only).
facts = sa.Table(
    "shipnav_facts",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("learned_at", TS, nullable=False),
    sa.Column("run_id", sa.String(64)),
)
