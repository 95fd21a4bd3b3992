"""retention: the indexes the retention sweep walks, built without blocking writes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

messaging.inbox (received_at), the published rows of messaging.outbox (created_at) and
orders.idempotency_keys (created_at): the retention sweep (functions/retention) deletes
their oldest rows in small batches, each found through one of these. Every step and every
POST /orders writes these tables, and on a populated database a plain CREATE INDEX would
hold off every one of those writes for the whole build; CREATE INDEX CONCURRENTLY does not,
but cannot run inside a transaction, so each index is built in an autocommit block (which
commits the revisions before it; env.py's session lock keeps another migrator waiting).
A build that failed half-way leaves an INVALID index of that name: it is dropped and built
again. Frozen history: names and columns are spelled out, not taken from common.tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (schema, index, table, what it indexes)
INDEXES = (
    ("messaging", "ix_inbox_received_at", "inbox", "(received_at)"),
    ("messaging", "ix_outbox_published", "outbox",
     "(created_at) WHERE published_at IS NOT NULL"),
    ("orders", "ix_idempotency_keys_created_at", "idempotency_keys", "(created_at)"),
)


def upgrade() -> None:
    context = op.get_context()
    with context.autocommit_block():
        for schema, name, table, what in INDEXES:
            if not context.as_sql and _invalid(schema, name):
                op.execute(f"DROP INDEX CONCURRENTLY {schema}.{name}")
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {schema}.{table} "
                       f"{what}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for schema, name, _, _ in reversed(INDEXES):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema}.{name}")


def _invalid(schema: str, name: str) -> bool:
    """An index of that name exists, left INVALID by a concurrent build that failed."""
    return bool(op.get_bind().execute(sa.text(
        "SELECT NOT i.indisvalid FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND c.relname = :name"), {"schema": schema, "name": name}
    ).scalar())
