"""The tables that grow with traffic, and how big they are: rows, bytes on disk (with their
indexes and TOAST), and the oldest row. `saga status` and the console show them; the
retention sweep (functions/retention) keeps them bounded (docs/operations.md, "Retention").

Cheap on a table of any size: rows are counted only in a small table and estimated as the
planner does in a big one (pg_class.reltuples scaled to the table's current pages, marked
`rows_estimated`); the oldest row is read through an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

# Counted exactly below this many bytes of heap (about 50,000 inbox rows); estimated above.
EXACT_COUNT_BELOW_BYTES = 8 * 2**20

# (table, the oldest row's time, read through an index of the table).
GROWING_TABLES: tuple[tuple[str, str], ...] = (
    ("messaging.inbox", "SELECT min(received_at) FROM messaging.inbox"),
    # Unpublished rows (ix_outbox_unpublished) and published ones (ix_outbox_published).
    ("messaging.outbox", """SELECT least(
        (SELECT min(created_at) FROM messaging.outbox WHERE published_at IS NULL),
        (SELECT min(created_at) FROM messaging.outbox WHERE published_at IS NOT NULL))"""),
    ("messaging.dead_letters",
     "SELECT created_at FROM messaging.dead_letters ORDER BY id LIMIT 1"),
    ("orders.idempotency_keys", "SELECT min(created_at) FROM orders.idempotency_keys"),
)

_SIZE = text("""
    SELECT c.reltuples, c.relpages, pg_relation_size(c.oid) AS heap_bytes,
           pg_total_relation_size(c.oid) AS total_bytes,
           current_setting('block_size')::int AS block_size
    FROM pg_class c WHERE c.oid = CAST(:table AS regclass)
""")


@dataclass(frozen=True)
class TableStats:
    table: str
    rows: int
    rows_estimated: bool
    bytes: int
    oldest: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "rows_estimated": self.rows_estimated,
                "bytes": self.bytes, "oldest": self.oldest.isoformat() if self.oldest else None}


def table_stats(conn: Connection) -> list[TableStats]:
    """Each growing table's size, in GROWING_TABLES' order."""
    return [_one(conn, table, oldest) for table, oldest in GROWING_TABLES]


def _one(conn: Connection, table: str, oldest_sql: str) -> TableStats:
    size = conn.execute(_SIZE, {"table": table}).one()
    oldest = conn.execute(text(oldest_sql)).scalar()
    if size.heap_bytes < EXACT_COUNT_BELOW_BYTES or size.relpages <= 0 or size.reltuples < 0:
        # Small, or never vacuumed nor analyzed (no density to scale): count.
        rows: int = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
        return TableStats(table, int(rows), False, int(size.total_bytes), oldest)
    pages_now = size.heap_bytes / size.block_size
    estimate = round(size.reltuples / size.relpages * pages_now)
    return TableStats(table, int(estimate), True, int(size.total_bytes), oldest)
