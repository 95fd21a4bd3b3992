"""initial schema: one schema per owner (docs/architecture.md, "Data ownership")

Revision ID: 0001
Revises:
Create Date: 2026-11-23

A migration is frozen history: everything is spelled out here rather than imported from
common.tables, whose later edits must not change what this revision did. Constraint and
index names are written in full, as the naming convention of common.tables.metadata
renders them (pk_<table>, fk_<table>_<column>_<referred table>, ck_<table>_<name>,
uq_<table>_<column>), so later revisions can drop or alter them by name.

Every name is wrapped in op.f() ("final"): Alembic builds the tables of op.* calls on a
MetaData carrying the naming convention of env.py's target_metadata, and that convention
would otherwise rewrite a given name (name="ck_orders_status" under "ck_%(table_name)s_
%(constraint_name)s" becomes ck_orders_ck_orders_status). op.f() also keeps this revision
independent of any later change to the convention.

Server defaults are written exactly as common.tables declares them (e.g. the quoted
string '0' rather than the literal 0), because PostgreSQL keeps the difference in its
catalogue ('0'::numeric versus 0) and the migration test holds the two to each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMAS = ("orders", "inventory", "payments", "shipping", "notifications", "auth", "messaging")

ORDER_STATUSES_SQL = (
    "'CREATED', 'AWAITING_PAYMENT', 'PAYMENT_PROCESSING', 'PAID', 'COMPLETED', 'CANCELLED'"
)


def _uuid() -> postgresql.UUID[uuid.UUID]:
    return postgresql.UUID()


def _money() -> sa.Numeric[Decimal]:
    return sa.Numeric(12, 2)


def _timestamptz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", _timestamptz(), server_default=sa.text("now()"), nullable=False)


def _updated_at() -> sa.Column[object]:
    return sa.Column("updated_at", _timestamptz(), server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f'CREATE SCHEMA "{schema}"')

    # --- orders --------------------------------------------------------------------------
    op.create_table(
        "orders",
        sa.Column("id", _uuid(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("payment_mode", sa.Text(), nullable=False),
        sa.Column("total", _money(), nullable=False),
        sa.Column("shipping_address", sa.Text(), server_default="", nullable=False),
        sa.Column("payment_deadline", _timestamptz(), nullable=True),
        _created_at(),
        _updated_at(),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.CheckConstraint(f"status IN ({ORDER_STATUSES_SQL})", name=op.f("ck_orders_status")),
        sa.CheckConstraint(
            "reason IS NULL OR reason IN ('out_of_stock', 'insufficient_funds', "
            "'payment_timeout', 'cancelled_by_customer', 'shipping_failed')",
            name=op.f("ck_orders_reason"),
        ),
        sa.CheckConstraint(
            "(status = 'CANCELLED') = (reason IS NOT NULL)",
            name=op.f("ck_orders_reason_iff_cancelled"),
        ),
        sa.CheckConstraint(
            "payment_mode IN ('auto', 'confirm')", name=op.f("ck_orders_payment_mode")
        ),
        sa.CheckConstraint("total >= 0", name=op.f("ck_orders_total_non_negative")),
        schema="orders",
    )
    op.create_index(
        op.f("ix_orders_customer_created"),
        "orders",
        ["customer_id", sa.text("created_at DESC")],
        schema="orders",
    )
    # Partial: the sweeper and the stuck-order report look only at orders still in flight.
    op.create_index(
        op.f("ix_orders_open_by_status"),
        "orders",
        ["status", "updated_at"],
        schema="orders",
        postgresql_where=sa.text("status NOT IN ('COMPLETED', 'CANCELLED')"),
    )

    op.create_table(
        "order_items",
        sa.Column("order_id", _uuid(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", _money(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "sku", name=op.f("pk_order_items")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.orders.id"],
            name=op.f("fk_order_items_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_items_quantity_positive")),
        sa.CheckConstraint("unit_price >= 0", name=op.f("ck_order_items_unit_price_non_negative")),
        schema="orders",
    )

    op.create_table(
        "order_status_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", _uuid(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=True),
        sa.Column("at", _timestamptz(), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_status_history")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.orders.id"],
            name=op.f("fk_order_status_history_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            f"to_status IN ({ORDER_STATUSES_SQL})", name=op.f("ck_order_status_history_to_status")
        ),
        schema="orders",
    )
    op.create_index(
        op.f("ix_order_status_history_order"),
        "order_status_history",
        ["order_id", "id"],
        schema="orders",
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("order_id", _uuid(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("customer_id", "key", name=op.f("pk_idempotency_keys")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.orders.id"],
            name=op.f("fk_idempotency_keys_order_id_orders"),
            ondelete="CASCADE",
        ),
        schema="orders",
    )

    # --- inventory -----------------------------------------------------------------------
    op.create_table(
        "products",
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("price", _money(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_products")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_products_price_non_negative")),
        schema="inventory",
    )

    op.create_table(
        "stock",
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_stock")),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["inventory.products.sku"],
            name=op.f("fk_stock_sku_products"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_stock_on_hand_non_negative")),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_stock_reserved_non_negative")),
        sa.CheckConstraint("reserved <= on_hand", name=op.f("ck_stock_reserved_within_on_hand")),
        schema="inventory",
    )

    op.create_table(
        "reservations",
        sa.Column("order_id", _uuid(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        _created_at(),
        _updated_at(),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_reservations")),
        sa.CheckConstraint(
            "status IN ('RESERVED', 'REJECTED', 'RELEASED', 'COMMITTED')",
            name=op.f("ck_reservations_status"),
        ),
        schema="inventory",
    )

    op.create_table(
        "reservation_items",
        sa.Column("order_id", _uuid(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "sku", name=op.f("pk_reservation_items")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["inventory.reservations.order_id"],
            name=op.f("fk_reservation_items_order_id_reservations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sku"], ["inventory.products.sku"], name=op.f("fk_reservation_items_sku_products")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_reservation_items_quantity_positive")),
        schema="inventory",
    )

    op.create_table(
        "stock_movements",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("delta_on_hand", sa.Integer(), nullable=False),
        sa.Column("delta_reserved", sa.Integer(), nullable=False),
        sa.Column("order_id", _uuid(), nullable=True),
        sa.Column("at", _timestamptz(), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["inventory.products.sku"],
            name=op.f("fk_stock_movements_sku_products"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "kind IN ('initial', 'restock', 'reserve', 'release', 'commit', 'return')",
            name=op.f("ck_stock_movements_kind"),
        ),
        schema="inventory",
    )
    op.create_index(op.f("ix_stock_movements_sku"), "stock_movements", ["sku"], schema="inventory")

    # --- payments ------------------------------------------------------------------------
    op.create_table(
        "accounts",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("balance", _money(), server_default="0", nullable=False),
        sa.Column("frozen", _money(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        _created_at(),
        _updated_at(),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_accounts")),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_accounts_balance_non_negative")),
        sa.CheckConstraint("frozen >= 0", name=op.f("ck_accounts_frozen_non_negative")),
        schema="payments",
    )

    op.create_table(
        "payments",
        # The primary key is the order: at most one payment per order.
        sa.Column("order_id", _uuid(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _created_at(),
        _updated_at(),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_payments")),
        sa.CheckConstraint(
            "status IN ('FROZEN', 'CAPTURED', 'REFUNDED', 'VOIDED', 'FAILED')",
            name=op.f("ck_payments_status"),
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_payments_amount_non_negative")),
        schema="payments",
    )

    op.create_table(
        "ledger",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("order_id", _uuid(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("balance_after", _money(), nullable=False),
        sa.Column("frozen_after", _money(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["payments.accounts.customer_id"],
            name=op.f("fk_ledger_customer_id_accounts"),
        ),
        sa.CheckConstraint(
            "kind IN ('deposit', 'freeze', 'unfreeze', 'capture', 'refund')",
            name=op.f("ck_ledger_kind"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_amount_positive")),
        schema="payments",
    )
    op.create_index(op.f("ix_ledger_customer"), "ledger", ["customer_id", "id"], schema="payments")
    op.create_index(op.f("ix_ledger_order"), "ledger", ["order_id"], schema="payments")

    # --- shipping ------------------------------------------------------------------------
    op.create_table(
        "shipments",
        # The primary key is the order: at most one shipment per order.
        sa.Column("order_id", _uuid(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("tracking_number", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), server_default="", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_shipments")),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_shipments_tracking_number")),
        sa.CheckConstraint("status IN ('DISPATCHED', 'FAILED')", name=op.f("ck_shipments_status")),
        sa.CheckConstraint(
            "(status = 'DISPATCHED') = (tracking_number IS NOT NULL)",
            name=op.f("ck_shipments_tracking"),
        ),
        schema="shipping",
    )

    # --- notifications -------------------------------------------------------------------
    op.create_table(
        "notifications",
        sa.Column("id", _uuid(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("order_id", _uuid(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _created_at(),
        sa.Column("read_at", _timestamptz(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        schema="notifications",
    )
    op.create_index(
        op.f("ix_notifications_customer"),
        "notifications",
        ["customer_id", sa.text("created_at DESC")],
        schema="notifications",
    )

    # --- auth ----------------------------------------------------------------------------
    op.create_table(
        "users",
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column(
            "roles",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{customer}'"),
            nullable=False,
        ),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", _timestamptz(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_users")),
        sa.CheckConstraint(
            "username ~ '^[A-Za-z0-9_.-]{3,64}$'", name=op.f("ck_users_username_format")
        ),
        schema="auth",
    )

    # --- messaging -----------------------------------------------------------------------
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("received_at", _timestamptz(), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox")),
        schema="messaging",
    )

    op.create_table(
        "outbox",
        sa.Column("id", _uuid(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("partition_key", sa.Text(), nullable=False),
        sa.Column("attributes", postgresql.JSONB(), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("producer", sa.Text(), nullable=False),
        sa.Column("caused_by", sa.Text(), nullable=True),
        _created_at(),
        sa.Column("published_at", _timestamptz(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        schema="messaging",
    )
    # Partial: the relay scans only what is still unpublished, which stays small while the
    # table grows.
    op.create_index(
        op.f("ix_outbox_unpublished"),
        "outbox",
        ["created_at"],
        schema="messaging",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_index(
        op.f("ix_outbox_caused_by"), "outbox", ["producer", "caused_by"], schema="messaging"
    )
    op.create_index(
        op.f("ix_outbox_partition_key"), "outbox", ["partition_key"], schema="messaging"
    )

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("attributes", postgresql.JSONB(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("error_dest", sa.Text(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_data", sa.Text(), nullable=True),
        _created_at(),
        sa.Column("redriven_at", _timestamptz(), nullable=True),
        sa.Column("redrive_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolved", sa.Boolean(), server_default="false", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        schema="messaging",
    )
    op.create_index(op.f("ix_dead_letters_event"), "dead_letters", ["event_id"], schema="messaging")


def downgrade() -> None:
    # Children before parents, so no foreign key is left pointing at a dropped table.
    # Dropping a table drops its indexes and constraints with it.
    for schema, table in (
        ("messaging", "dead_letters"),
        ("messaging", "outbox"),
        ("messaging", "inbox"),
        ("auth", "users"),
        ("notifications", "notifications"),
        ("shipping", "shipments"),
        ("payments", "ledger"),
        ("payments", "payments"),
        ("payments", "accounts"),
        ("inventory", "stock_movements"),
        ("inventory", "reservation_items"),
        ("inventory", "reservations"),
        ("inventory", "stock"),
        ("inventory", "products"),
        ("orders", "idempotency_keys"),
        ("orders", "order_status_history"),
        ("orders", "order_items"),
        ("orders", "orders"),
    ):
        op.drop_table(table, schema=schema)
    # No CASCADE: if something this revision did not create lives in a schema, the
    # downgrade fails rather than silently destroying it.
    for schema in reversed(SCHEMAS):
        op.execute(f'DROP SCHEMA "{schema}"')
