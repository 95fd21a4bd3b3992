"""SQLAlchemy Core tables of every schema (docs/architecture.md, "Data ownership"). The
Alembic migrations create them; a test holds the migrated database and these definitions
to each other.

One schema per owner, so each could move to its own database later. Constraints make
illegal states impossible where SQL can: no negative stock or money, one payment and one
shipment per order, unique inbox keys, a reason exactly when an order is cancelled.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ORDER_STATUSES = (
    "CREATED", "AWAITING_PAYMENT", "PAYMENT_PROCESSING", "PAID", "COMPLETED", "CANCELLED",
)
CANCEL_REASONS = (
    "out_of_stock", "insufficient_funds", "payment_timeout", "cancelled_by_customer",
    "shipping_failed", "cancelled_by_operator",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _money(name: str, **kw: object) -> Column[object]:
    return Column(name, Numeric(12, 2), **kw)  # type: ignore[arg-type]


def _created_at() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


# --- orders ------------------------------------------------------------------------------

orders = Table(
    "orders", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text),
    Column("payment_mode", Text, nullable=False),
    _money("total", nullable=False),
    Column("shipping_address", Text, nullable=False, server_default=""),
    Column("payment_deadline", DateTime(timezone=True)),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("version", Integer, nullable=False, server_default="0"),
    # The W3C traceparent of the span that created the order (docs/observability.md, "One
    # order, its traces"); NULL only for orders older than migration 0002 with no event left.
    Column("traceparent", Text),
    CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
    CheckConstraint(f"reason IS NULL OR {_in('reason', CANCEL_REASONS)}", name="reason"),
    CheckConstraint("(status = 'CANCELLED') = (reason IS NOT NULL)", name="reason_iff_cancelled"),
    CheckConstraint("payment_mode IN ('auto', 'confirm')", name="payment_mode"),
    CheckConstraint("total >= 0", name="total_non_negative"),
    CheckConstraint("traceparent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'",
                    name="traceparent_w3c"),
    Index("ix_orders_customer_created", "customer_id", text("created_at DESC")),
    Index(
        "ix_orders_open_by_status", "status", "updated_at",
        postgresql_where=text("status NOT IN ('COMPLETED', 'CANCELLED')"),
    ),
    # The console's find (newest first, a time range), its per-minute counts, its filter by
    # cancel reason and its completion times (docs/operations.md, "The console").
    Index("ix_orders_created", text("created_at DESC"), text("id DESC")),
    Index("ix_orders_cancelled", "reason", text("created_at DESC"), text("id DESC"),
          postgresql_where=text("status = 'CANCELLED'")),
    Index("ix_orders_completed", "updated_at", postgresql_where=text("status = 'COMPLETED'")),
    Index("ix_orders_status_reason", "status", "reason"),
    Index("ix_orders_open_created", "created_at",
          postgresql_where=text("status NOT IN ('COMPLETED', 'CANCELLED')")),
    schema="orders",
)

order_items = Table(
    "order_items", metadata,
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.orders.id", ondelete="CASCADE"),
           nullable=False),
    Column("sku", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    _money("unit_price", nullable=False),
    PrimaryKeyConstraint("order_id", "sku"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("unit_price >= 0", name="unit_price_non_negative"),
    Index("ix_order_items_sku", "sku", "order_id"),  # the console's find by SKU
    schema="orders",
)

order_status_history = Table(
    "order_status_history", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.orders.id", ondelete="CASCADE"),
           nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("reason", Text),
    Column("actor", Text, nullable=False),
    Column("event_id", Text),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("to_status", ORDER_STATUSES), name="to_status"),
    Index("ix_order_status_history_order", "order_id", "id"),
    schema="orders",
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("customer_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.orders.id", ondelete="CASCADE"),
           nullable=False),
    _created_at(),
    PrimaryKeyConstraint("customer_id", "key"),
    Index("ix_idempotency_keys_created_at", "created_at"),  # the retention sweep's walk
    schema="orders",
)

# --- inventory ---------------------------------------------------------------------------

products = Table(
    "products", metadata,
    Column("sku", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    _money("price", nullable=False),
    _created_at(),
    CheckConstraint("price >= 0", name="price_non_negative"),
    schema="inventory",
)

# on_hand counts every unit in the warehouse, reserved the part of it promised to orders:
# reserving raises `reserved`, releasing lowers it, committing lowers both.
stock = Table(
    "stock", metadata,
    Column("sku", Text, ForeignKey("inventory.products.sku", ondelete="CASCADE"), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("version", Integer, nullable=False, server_default="0"),
    CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),
    CheckConstraint("reserved >= 0", name="reserved_non_negative"),
    CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    schema="inventory",
)

RESERVATION_STATUSES = ("RESERVED", "REJECTED", "RELEASED", "COMMITTED")

# One row per order the inventory has decided on. A RELEASED row written before any
# reservation (a cancellation that overtook order.created) makes a later reserve a no-op.
reservations = Table(
    "reservations", metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("status", Text, nullable=False),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("status", RESERVATION_STATUSES), name="status"),
    schema="inventory",
)

reservation_items = Table(
    "reservation_items", metadata,
    Column("order_id", UUID(as_uuid=True),
           ForeignKey("inventory.reservations.order_id", ondelete="CASCADE"), nullable=False),
    Column("sku", Text, ForeignKey("inventory.products.sku"), nullable=False),
    Column("quantity", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "sku"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    schema="inventory",
)

STOCK_MOVEMENT_KINDS = ("initial", "restock", "reserve", "release", "commit", "return")

# Every change to stock, so conservation can be checked: sum(delta_on_hand) = on_hand and
# sum(delta_reserved) = reserved for each SKU.
stock_movements = Table(
    "stock_movements", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("sku", Text, ForeignKey("inventory.products.sku", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("delta_on_hand", Integer, nullable=False),
    Column("delta_reserved", Integer, nullable=False),
    Column("order_id", UUID(as_uuid=True)),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("kind", STOCK_MOVEMENT_KINDS), name="kind"),
    Index("ix_stock_movements_sku", "sku"),
    Index("ix_stock_movements_order", "order_id"),  # one order's effects (the console)
    schema="inventory",
)

# --- payments ----------------------------------------------------------------------------

# balance is spendable money, frozen is money held for a payment in flight.
accounts = Table(
    "accounts", metadata,
    Column("customer_id", Text, primary_key=True),
    _money("balance", nullable=False, server_default="0"),
    _money("frozen", nullable=False, server_default="0"),
    Column("version", Integer, nullable=False, server_default="0"),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("balance >= 0", name="balance_non_negative"),
    CheckConstraint("frozen >= 0", name="frozen_non_negative"),
    schema="payments",
)

PAYMENT_STATUSES = ("FROZEN", "CAPTURED", "REFUNDED", "VOIDED", "FAILED")

payments = Table(
    "payments", metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),  # at most one payment per order
    Column("customer_id", Text, nullable=False),
    _money("amount", nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("status", PAYMENT_STATUSES), name="status"),
    CheckConstraint("amount >= 0", name="amount_non_negative"),
    schema="payments",
)

LEDGER_KINDS = ("deposit", "freeze", "unfreeze", "capture", "refund")

ledger = Table(
    "ledger", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("customer_id", Text, ForeignKey("payments.accounts.customer_id"), nullable=False),
    Column("order_id", UUID(as_uuid=True)),
    Column("kind", Text, nullable=False),
    _money("amount", nullable=False),
    _money("balance_after", nullable=False),
    _money("frozen_after", nullable=False),
    _created_at(),
    CheckConstraint(_in("kind", LEDGER_KINDS), name="kind"),
    CheckConstraint("amount > 0", name="amount_positive"),
    Index("ix_ledger_customer", "customer_id", "id"),
    Index("ix_ledger_order", "order_id"),
    schema="payments",
)

# --- shipping ----------------------------------------------------------------------------

shipments = Table(
    "shipments", metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),  # at most one shipment per order
    Column("status", Text, nullable=False),
    Column("tracking_number", Text, unique=True),
    Column("address", Text, nullable=False, server_default=""),
    Column("reason", Text),
    _created_at(),
    CheckConstraint("status IN ('DISPATCHED', 'FAILED')", name="status"),
    CheckConstraint("(status = 'DISPATCHED') = (tracking_number IS NOT NULL)", name="tracking"),
    schema="shipping",
)

# --- notifications -----------------------------------------------------------------------

notifications = Table(
    "notifications", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("order_id", UUID(as_uuid=True)),
    Column("kind", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    _created_at(),
    Column("read_at", DateTime(timezone=True)),
    Index("ix_notifications_customer", "customer_id", text("created_at DESC")),
    schema="notifications",
)

# --- auth --------------------------------------------------------------------------------

users = Table(
    "users", metadata,
    Column("username", Text, primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("roles", ARRAY(Text), nullable=False, server_default=text("'{customer}'")),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True)),
    _created_at(),
    CheckConstraint("username ~ '^[A-Za-z0-9_.-]{3,64}$'", name="username_format"),
    schema="auth",
)

# --- messaging (every function) ----------------------------------------------------------

# (consumer, event id) seen: written in the same transaction as the effects, so an effect
# happens once however often the event is delivered.
inbox = Table(
    "inbox", metadata,
    Column("consumer", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer", "event_id"),
    Index("ix_inbox_received_at", "received_at"),  # the retention sweep's walk
    schema="messaging",
)

# Outgoing events, written with the effects that caused them and published after commit.
outbox = Table(
    "outbox", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),  # the CloudEvent id
    Column("topic", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("partition_key", Text, nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("producer", Text, nullable=False),
    Column("caused_by", Text),  # incoming event id, so a duplicate re-publishes what it caused
    _created_at(),
    Column("published_at", DateTime(timezone=True)),
    Index("ix_outbox_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
    Index("ix_outbox_caused_by", "producer", "caused_by"),
    Index("ix_outbox_partition_key", "partition_key"),
    # The retention sweep's walk, and the oldest row `saga status` shows: published rows only
    # (an entry is added when a row is marked published, never for a row still unpublished).
    Index("ix_outbox_published", "created_at", postgresql_where=text("published_at IS NOT NULL")),
    schema="messaging",
)

dead_letters = Table(
    "dead_letters", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("subject", Text),
    Column("attributes", JSONB, nullable=False),
    Column("data", LargeBinary),
    Column("error_dest", Text),
    Column("error_code", Integer),
    Column("error_data", Text),
    _created_at(),
    Column("redriven_at", DateTime(timezone=True)),
    Column("redrive_count", Integer, nullable=False, server_default="0"),
    Column("resolved", Boolean, nullable=False, server_default="false"),
    Index("ix_dead_letters_event", "event_id"),
    # One order's letters (the console, saga trace): the key our producers give is the order.
    Index("ix_dead_letters_order", text("(attributes ->> 'partitionkey')")),
    schema="messaging",
)

# --- console -----------------------------------------------------------------------------

AUDIT_ACTIONS = (
    "order.cancel", "order.redrive", "orders.cancel", "letter.redrive", "letters.redrive",
    "letter.resolve", "letter.reveal",
)
AUDIT_OUTCOMES = ("done", "unchanged", "refused")

# Every operation an operator ran in the console: who, when, what, why, the filter of a
# bulk one and how many it changed; refusals too. Written in the operation's transaction.
audit = Table(
    "audit", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("why", Text, nullable=False, server_default=""),
    Column("filter", JSONB),
    Column("count", Integer, nullable=False, server_default="0"),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("order_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
    Column("letter_ids", ARRAY(BigInteger), nullable=False, server_default="{}"),
    Column("trace_id", Text),
    CheckConstraint(_in("action", AUDIT_ACTIONS), name="action"),
    CheckConstraint(_in("outcome", AUDIT_OUTCOMES), name="outcome"),
    CheckConstraint("count >= 0", name="count_non_negative"),
    Index("ix_audit_order_ids", "order_ids", postgresql_using="gin"),
    Index("ix_audit_letter_ids", "letter_ids", postgresql_using="gin"),
    schema="console",
)

SCHEMAS = ("orders", "inventory", "payments", "shipping", "notifications", "auth", "messaging",
           "console")
