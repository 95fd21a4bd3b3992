"""orders keep their trace context: orders.orders.traceparent

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

The W3C traceparent of the span that created the order (docs/observability.md, "One
order, its traces"): the saga's own later work on the order continues that trace (the
timeouts sweep), and a customer's later request about it, a trace of its own, links to it.

Orders created before this revision take the traceparent of their order.created event from
the outbox, which is in the order's trace; an order whose event is gone keeps NULL, and the
sweep starts a new trace for it.

A migration is frozen history: spell out tables and columns here rather than importing
common.tables, whose later edits must not change what this revision did.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("traceparent", sa.Text()), schema="orders")
    op.create_check_constraint(op.f("ck_orders_traceparent_w3c"), "orders",
                               "traceparent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'",
                               schema="orders")
    op.execute("""
        UPDATE orders.orders o
           SET traceparent = e.attributes ->> 'traceparent'
          FROM messaging.outbox e
         WHERE e.partition_key = o.id::text
           AND e.event_type = 'shop.order.created.v1'
           AND e.attributes ->> 'traceparent' ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
    """)


def downgrade() -> None:
    op.drop_constraint(op.f("ck_orders_traceparent_w3c"), "orders", schema="orders")
    op.drop_column("orders", "traceparent", schema="orders")
