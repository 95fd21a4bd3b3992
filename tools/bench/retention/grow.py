"""Grow messaging.inbox, messaging.outbox and orders.idempotency_keys to a number of rows
each, fast (INSERT ... SELECT over generate_series, 500,000 rows per transaction), with
rows like the saga's own: random UUID event ids (so the primary keys grow by random inserts,
as in production), the eight deliveries and eight events an order makes, CloudEvent
attributes and data of realistic size, times spread back over the days that many rows take
at a million orders a month, every outbox row published. Rows are added before the oldest
already there, so the newest rows stay the bench's own."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, text

CHUNK = 500_000
TABLES = ("messaging.inbox", "messaging.outbox", "orders.idempotency_keys")
# A million orders a month: eight inbox and eight outbox rows, one idempotency key each.
ROWS_PER_DAY = {"messaging.inbox": 8_000_000 / 30, "messaging.outbox": 8_000_000 / 30,
                "orders.idempotency_keys": 1_000_000 / 30}
HISTORY_ORDERS = 10_000  # finished orders the generated idempotency keys point at

# The deliveries of one order (consumer, the event type it got), as the catalogue routes them.
_DELIVERIES = (("inventory", "shop.order.created.v1"), ("order-saga", "shop.stock.reserved.v1"),
               ("payments", "shop.payment.requested.v1"),
               ("order-saga", "shop.payment.completed.v1"), ("inventory", "shop.order.paid.v1"),
               ("shipping", "shop.order.paid.v1"), ("order-saga", "shop.shipment.dispatched.v1"),
               ("notifications", "shop.order.completed.v1"))
_EMITS = (("api", "shop.order.created.v1"), ("inventory", "shop.stock.reserved.v1"),
          ("order-saga", "shop.payment.requested.v1"), ("payments", "shop.payment.completed.v1"),
          ("order-saga", "shop.order.paid.v1"), ("shipping", "shop.shipment.dispatched.v1"),
          ("order-saga", "shop.order.completed.v1"), ("order-saga", "shop.order.completed.v1"))


def _array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


# :n rows, :start the time the newest of them gets, :step seconds between two rows. The
# SQL is built from this module's constants only.
_INBOX = f"""
INSERT INTO messaging.inbox (consumer, event_id, event_type, received_at)
SELECT ({_array(tuple(d[0] for d in _DELIVERIES))})[1 + g % 8], gen_random_uuid()::text,
       ({_array(tuple(d[1] for d in _DELIVERIES))})[1 + g % 8],
       CAST(:start AS timestamptz) - g * :step * interval '1 second'
FROM generate_series(1, :n) g
"""  # noqa: S608
_OUTBOX = f"""
INSERT INTO messaging.outbox (id, topic, event_type, partition_key, attributes, data,
                              producer, caused_by, created_at, published_at)
SELECT e.id, e.type, e.type, e.order_id,
       jsonb_build_object('specversion', '1.0', 'id', e.id::text, 'source', '/saga/' || e.producer,
                          'type', e.type, 'subject', e.order_id, 'partitionkey', e.order_id,
                          'time', to_char(e.at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                          'datacontenttype', 'application/json',
                          'traceparent', '00-' || md5(e.order_id) || '-'
                                         || left(md5(e.id::text), 16) || '-01'),
       jsonb_build_object('order_id', e.order_id, 'customer_id', 'customer-' || (e.g % 20000),
                          'items', jsonb_build_array(jsonb_build_object(
                              'sku', 'MUG-00' || (e.g % 9), 'quantity', 1 + e.g % 3,
                              'unit_price', '12.50')),
                          'total', '25.00', 'payment_mode', 'auto'),
       e.producer, gen_random_uuid()::text, e.at, e.at + interval '30 milliseconds'
FROM (SELECT g, gen_random_uuid() AS id,
             CAST(md5('order' || (g / 8)) AS uuid)::text AS order_id,
             ({_array(tuple(x[0] for x in _EMITS))})[1 + g % 8] AS producer,
             ({_array(tuple(x[1] for x in _EMITS))})[1 + g % 8] AS type,
             CAST(:start AS timestamptz) - g * :step * interval '1 second' AS at
      FROM generate_series(1, :n) g) e
"""  # noqa: S608
_HISTORY = """
INSERT INTO orders.orders (id, customer_id, status, payment_mode, total, created_at, updated_at)
SELECT CAST(md5('history' || g) AS uuid), 'customer-' || (g % 20000), 'COMPLETED', 'auto', 25,
       now() - interval '400 days', now() - interval '400 days'
FROM generate_series(1, :n) g
ON CONFLICT DO NOTHING
"""
_KEYS = """
INSERT INTO orders.idempotency_keys (customer_id, key, request_hash, order_id, created_at)
SELECT 'customer-' || (g % 20000), gen_random_uuid()::text, md5(g::text),
       CAST(md5('history' || (1 + g % :history)) AS uuid),
       CAST(:start AS timestamptz) - g * :step * interval '1 second'
FROM generate_series(1, :n) g
"""
_SQL = {"messaging.inbox": _INBOX, "messaging.outbox": _OUTBOX,
        "orders.idempotency_keys": _KEYS}
_OLDEST = {"messaging.inbox": "received_at", "messaging.outbox": "created_at",
           "orders.idempotency_keys": "created_at"}


def count(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def grow(engine: Engine, rows: int, progress: Callable[[str], None] = print) -> dict[str, float]:
    """Add rows until each table holds `rows`; seconds each table took."""
    took: dict[str, float] = {}
    with engine.begin() as conn:
        conn.execute(text(_HISTORY), {"n": HISTORY_ORDERS})
    for table in TABLES:
        started = time.monotonic()
        step = 86400 / ROWS_PER_DAY[table]
        with engine.connect() as conn:
            missing = rows - count(conn, table)
        while missing > 0:
            n = min(CHUNK, missing)
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL statement_timeout = 0"))  # a chunk takes minutes
                oldest: object = conn.execute(text(
                    f"SELECT coalesce(min({_OLDEST[table]}), now()) FROM {table}")).scalar_one()  # noqa: S608
                conn.execute(text(_SQL[table]), {"n": n, "start": oldest, "step": step,
                                                 "history": HISTORY_ORDERS})
            missing -= n
            progress(f"{table}: {rows - missing:,} rows ({time.monotonic() - started:.0f} s)")
        took[table] = round(time.monotonic() - started, 1)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("SET statement_timeout = 0"))
        conn.execute(text("VACUUM ANALYZE messaging.inbox, messaging.outbox, "
                          "orders.idempotency_keys"))
        # The load's dirty pages written now, not by the checkpointer during a measurement.
        conn.execute(text("CHECKPOINT"))
        conn.execute(text("RESET statement_timeout"))  # back to the pool as it came
    return took
