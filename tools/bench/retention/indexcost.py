"""What the hot path pays for migration 0003's indexes: the writes a step or POST /orders makes
to each table (an inbox insert; an outbox insert, then the mark of its publication, which is
when ix_outbox_published gets its entry; an idempotency-key insert), one statement at a time
inside PostgreSQL (a PL/pgSQL loop: no client in the figure), on scratch copies of the tables
with and without the index, alternated, the median of the runs in microseconds per row."""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import Engine, text

SCHEMA = "retention_bench_scratch"
# (table, index, the loop's body for row i).
WRITES = (
    ("inbox", "ix_inbox_received_at",
     "INSERT INTO {t} (consumer, event_id, event_type) "
     "VALUES ('inventory', gen_random_uuid()::text, 'shop.order.created.v1');"),
    ("outbox", "ix_outbox_published",
     "new_id := gen_random_uuid(); "
     "INSERT INTO {t} (id, topic, event_type, partition_key, attributes, data, producer) "
     "VALUES (new_id, 't', 't', new_id::text, '{{}}', '{{}}', 'api'); "
     "UPDATE {t} SET published_at = now() WHERE {t}.id = new_id;"),
    ("idempotency_keys", "ix_idempotency_keys_created_at",
     "INSERT INTO {t} (customer_id, key, request_hash, order_id) "
     "VALUES ('c', gen_random_uuid()::text, 'h', gen_random_uuid());"),
)


def index_cost(engine: Engine, *, rows: int = 20_000, runs: int = 5) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        try:
            for table, index, body in WRITES:
                source = "orders" if table == "idempotency_keys" else "messaging"
                with_index: list[float] = []
                without: list[float] = []
                for _ in range(runs):
                    for has_index, samples in ((True, with_index), (False, without)):
                        scratch = f"{SCHEMA}.{table}"
                        conn.execute(text(f"DROP TABLE IF EXISTS {scratch}"))
                        # No foreign keys (LIKE copies none): the loop measures the indexes,
                        # the table's own, under their own names (the primary key as a
                        # unique index), less the one measured in every other run.
                        conn.execute(text(f"CREATE TABLE {scratch} (LIKE {source}.{table} "
                                          "INCLUDING ALL EXCLUDING INDEXES)"))
                        for name, definition in conn.execute(text(
                                "SELECT indexname, indexdef FROM pg_indexes "
                                "WHERE schemaname = :s AND tablename = :t"),
                                {"s": source, "t": table}):
                            if has_index or name != index:
                                conn.execute(text(str(definition).replace(
                                    f" ON {source}.{table} ", f" ON {scratch} ")))
                        samples.append(_loop(conn, body.format(t=scratch), rows))
                median_with, median_without = (statistics.median(with_index),
                                               statistics.median(without))
                out[table] = {"index": index, "us_per_row_with": round(median_with, 2),
                              "us_per_row_without": round(median_without, 2),
                              "us_added": round(median_with - median_without, 2)}
        finally:
            conn.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
    return out


def _loop(conn: Any, body: str, rows: int) -> float:
    """Microseconds per iteration of `body`, run `rows` times in one DO block."""
    conn.execute(text(f"""
        DO $$
        DECLARE started timestamptz := clock_timestamp(); new_id uuid;
        BEGIN
          FOR i IN 1..{int(rows)} LOOP {body} END LOOP;
          PERFORM set_config('bench.us', (extract(epoch FROM clock_timestamp() - started)
                                         * 1e6 / {int(rows)})::text, false);
        END $$"""))
    return float(conn.execute(text("SELECT current_setting('bench.us')")).scalar_one())
