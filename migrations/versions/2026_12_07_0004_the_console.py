"""the console: an operator's cancel reason, the audit of operations, and its indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

- orders.reason takes `cancelled_by_operator`: an order an operator cancelled in the console
  (its compensations run as for any cancel; the customer is told "Our support team
  cancelled it.").
- console.audit: every operation an operator ran (who, when, what, why, the filter and the
  count), written in the operation's own transaction.
- indexes the console's queries take on 100,000 orders (docs/benchmarks.md, "The console"):
  find newest first or in a time range, by cancel reason, by SKU; completion times; counts
  by status; open orders oldest first (stuck); one order's dead letters and stock
  movements.

A migration is frozen history: spell out tables and columns here rather than importing
common.tables, whose later edits must not change what this revision did.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = ("'out_of_stock', 'insufficient_funds', 'payment_timeout', "
           "'cancelled_by_customer', 'shipping_failed'")
ACTIONS = ("'order.cancel', 'order.redrive', 'orders.cancel', 'letter.redrive', "
           "'letters.redrive', 'letter.resolve', 'letter.reveal'")


def _reasons(extra: str) -> str:
    return f"reason IS NULL OR reason IN ({REASONS}{extra})"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_orders_reason"), "orders", schema="orders")
    op.create_check_constraint(op.f("ck_orders_reason"), "orders",
                               _reasons(", 'cancelled_by_operator'"), schema="orders")

    op.execute('CREATE SCHEMA "console"')
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("why", sa.Text(), server_default="", nullable=False),
        sa.Column("filter", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("order_ids", postgresql.ARRAY(postgresql.UUID()), server_default="{}",
                  nullable=False),
        sa.Column("letter_ids", postgresql.ARRAY(sa.BigInteger()), server_default="{}",
                  nullable=False),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
        sa.CheckConstraint(f"action IN ({ACTIONS})", name=op.f("ck_audit_action")),
        sa.CheckConstraint("outcome IN ('done', 'unchanged', 'refused')",
                           name=op.f("ck_audit_outcome")),
        sa.CheckConstraint("count >= 0", name=op.f("ck_audit_count_non_negative")),
        schema="console",
    )
    op.create_index(op.f("ix_audit_order_ids"), "audit", ["order_ids"], schema="console",
                    postgresql_using="gin")
    op.create_index(op.f("ix_audit_letter_ids"), "audit", ["letter_ids"], schema="console",
                    postgresql_using="gin")

    op.create_index(op.f("ix_orders_created"), "orders",
                    [sa.text("created_at DESC"), sa.text("id DESC")], schema="orders")
    op.create_index(op.f("ix_orders_cancelled"), "orders",
                    ["reason", sa.text("created_at DESC"), sa.text("id DESC")],
                    schema="orders", postgresql_where=sa.text("status = 'CANCELLED'"))
    op.create_index(op.f("ix_orders_completed"), "orders", ["updated_at"], schema="orders",
                    postgresql_where=sa.text("status = 'COMPLETED'"))
    op.create_index(op.f("ix_orders_status_reason"), "orders", ["status", "reason"],
                    schema="orders")
    op.create_index(op.f("ix_orders_open_created"), "orders", ["created_at"], schema="orders",
                    postgresql_where=sa.text("status NOT IN ('COMPLETED', 'CANCELLED')"))
    op.create_index(op.f("ix_order_items_sku"), "order_items", ["sku", "order_id"],
                    schema="orders")
    op.create_index(op.f("ix_stock_movements_order"), "stock_movements", ["order_id"],
                    schema="inventory")
    op.create_index(op.f("ix_dead_letters_order"), "dead_letters",
                    [sa.text("(attributes ->> 'partitionkey')")], schema="messaging")


def downgrade() -> None:
    op.drop_index(op.f("ix_dead_letters_order"), "dead_letters", schema="messaging")
    op.drop_index(op.f("ix_stock_movements_order"), "stock_movements", schema="inventory")
    op.drop_index(op.f("ix_order_items_sku"), "order_items", schema="orders")
    for name in ("ix_orders_open_created", "ix_orders_status_reason", "ix_orders_completed",
                 "ix_orders_cancelled", "ix_orders_created"):
        op.drop_index(op.f(name), "orders", schema="orders")
    op.drop_table("audit", schema="console")
    op.execute('DROP SCHEMA "console"')
    # The older revision has no word for an operator's cancel, and rewriting the reason of
    # orders already cancelled would falsify their history: refuse instead.
    op.execute("""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM orders.orders WHERE reason = 'cancelled_by_operator') THEN
                RAISE EXCEPTION 'orders cancelled_by_operator exist; revision 0002 cannot '
                                'hold them';
            END IF;
        END $$""")
    op.drop_constraint(op.f("ck_orders_reason"), "orders", schema="orders")
    op.create_check_constraint(op.f("ck_orders_reason"), "orders", _reasons(""),
                               schema="orders")
