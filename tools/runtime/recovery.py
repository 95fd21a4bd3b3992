"""Re-publish the outbox of unfinished orders after the embedded broker (re)started.

The embedded broker keeps messages in memory only, so a restart of `./taskw up` starts
with empty topics while the database remembers orders half-way through their saga. Their
outbox rows, published or not, are produced again (oldest first, so each order's events
keep their order on its partition); consumers dedupe by their inbox, so events already
handled change nothing. Orders that are COMPLETED or CANCELLED need nothing more. The
broker's start, on the database's clock, tells the retention sweep what the broker may hold.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from confluent_kafka import KafkaError, Message, Producer
from sqlalchemy import create_engine, pool, text

from common.cloudevents_kafka import event_from_parts, to_kafka
from common.kafka import producer_config
from common.settings import Settings, to_sqlalchemy_url

_UNFINISHED_OUTBOX = text("""
    SELECT o.topic, o.attributes, o.data
    FROM messaging.outbox AS o
    JOIN orders.orders AS ord ON o.partition_key = ord.id::text
    WHERE ord.status NOT IN ('COMPLETED', 'CANCELLED')
    ORDER BY o.created_at, o.id
""")


def on_database_clock(database_url: str, instant: float) -> datetime:
    """The monotonic `instant` of this process on the database's clock: the time the
    retention sweep compares inbox rows' received_at with (functions/retention/rules.py),
    never later than the instant, whatever this machine's clock says."""
    engine = create_engine(to_sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            database_now: datetime = connection.execute(
                text("SELECT clock_timestamp()")).scalar_one()
        return database_now - timedelta(seconds=time.monotonic() - instant)
    finally:
        engine.dispose()


def republish_unfinished(settings: Settings, database_url: str, *, timeout: float = 30.0) -> int:
    """Produce the outbox rows of every order not yet terminal; how many were produced."""
    # NullPool: nothing of this one-off query outlives the call.
    engine = create_engine(to_sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(_UNFINISHED_OUTBOX).all()
    finally:
        engine.dispose()
    if not rows:
        return 0
    producer = Producer(producer_config(settings))
    failed: list[str] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        # flush() counts only what is still queued: a record the broker refused (e.g. its
        # topic does not exist, as on a Kafka without auto-creation) is gone from the queue
        # but was never written, and only its delivery report says so.
        if error is not None:
            failed.append(f"{message.topic()}: {error.str()}")

    for row in rows:
        record = to_kafka(event_from_parts(row.attributes, row.data), str(row.topic))
        producer.produce(record.topic, value=record.value, key=record.key,
                         headers=list(record.headers), on_delivery=delivered)
        producer.poll(0)
    remaining = producer.flush(timeout)
    if remaining:
        raise RuntimeError(f"{remaining} outbox event(s) were not acknowledged by the broker "
                           f"within {timeout:.0f} s")
    if failed:
        raise RuntimeError(f"{len(failed)} outbox event(s) were refused by the broker: "
                           f"{'; '.join(sorted(set(failed))[:5])}")
    return len(rows)
