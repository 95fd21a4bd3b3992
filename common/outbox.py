"""Transactional outbox: events are written in the transaction that caused them and
published after commit. Publishing never fails the caller: what is not acknowledged stays
unpublished for the relay (outbox-relay function, and the local runtime on restart).
Duplicates on Kafka are possible (a relay and a step may both publish a row); every
consumer deduplicates by its inbox, so at-least-once publishing is enough."""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from cloudevents.http import CloudEvent
from confluent_kafka import KafkaError, Message, Producer
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, func, insert, select

from common import tables as t
from common.cloudevents_kafka import attributes_of, event_from_parts, new_event, to_kafka
from common.dead_letters import REDRIVE_EXTENSION
from common.outbox_marks import mark_published
from common.tracing import TraceContext

log = logging.getLogger(__name__)


_INSERT = insert(t.outbox)
_REDRIVES = uuid.UUID("0c9f3b0e-5d4a-4c1e-8f6b-7a2e9d1c3b5f")  # uuid5 namespace of re-drive rows


def row_id(event: CloudEvent) -> uuid.UUID:
    """The outbox row of an event: its id. A dead letter's re-drive is that event again,
    same id (common/dead_letters.py): its row's id comes from the id and the re-drive's
    mark, so each re-drive is a row of its own, published and marked by itself."""
    mark = event.get(REDRIVE_EXTENSION)
    if mark:
        return uuid.uuid5(_REDRIVES, f"{event['id']}|{mark}")
    return uuid.UUID(event["id"])


class Outbox:
    """The events one transaction emits, in order. Not thread-safe: one per transaction."""

    def __init__(self, producer: str, trace: TraceContext, caused_by: str | None = None) -> None:
        self.producer = producer
        self.trace = trace
        self.caused_by = caused_by
        self.events: list[CloudEvent] = []

    def emit(self, event_type: str, data: BaseModel, *, partition_key: str) -> CloudEvent:
        event = new_event(
            event_type, data, source_function=self.producer, partition_key=partition_key,
            trace=self.trace.child(),
        )
        self.events.append(event)
        return event

    def add(self, event: CloudEvent) -> None:
        """An event made elsewhere (a dead letter's re-drive), written and published with
        the emitted ones, as it is."""
        self.events.append(event)

    def write(self, conn: Connection) -> None:
        """Insert the emitted events in the caller's transaction (one round trip)."""
        if not self.events:
            return
        conn.execute(
            _INSERT,
            [
                {
                    "id": row_id(e),
                    "topic": e["type"],
                    "event_type": e["type"],
                    "partition_key": e["partitionkey"],
                    "attributes": attributes_of(e),
                    "data": e.get_data(),
                    "producer": self.producer,
                    "caused_by": self.caused_by,
                }
                for e in self.events
            ],
        )


def unpublished_caused_by(conn: Connection, producer: str, caused_by: str) -> list[CloudEvent]:
    """What an earlier delivery of `caused_by` emitted but did not get published."""
    rows = conn.execute(
        select(t.outbox.c.attributes, t.outbox.c.data)
        .where(
            t.outbox.c.producer == producer,
            t.outbox.c.caused_by == caused_by,
            t.outbox.c.published_at.is_(None),
        )
        .order_by(t.outbox.c.created_at)
    ).all()
    return [event_from_parts(r.attributes, r.data) for r in rows]


class Publisher:
    """Produces outbox events and waits for the broker's acknowledgements. Thread-safe."""

    def __init__(self, producer: Callable[[], Producer], timeout_s: float) -> None:
        self._producer = producer  # called per publish: the process's one, made on first use
        self.timeout_s = timeout_s

    def produce(self, events: Sequence[CloudEvent]) -> list[str]:
        """Produce and wait for acknowledgements; the row ids (row_id) of the events the
        broker acknowledged."""
        if not events:
            return []
        acked: list[str] = []
        lock = threading.Lock()

        # Delivery reports carry no headers, so each callback is bound to its event id.
        def on_delivery(event_id: str, err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                with lock:
                    acked.append(event_id)
            else:
                log.warning("outbox publish failed: %s", err)

        try:
            producer = self._producer()
            for event in events:
                record = to_kafka(event)
                producer.produce(
                    record.topic, key=record.key, value=record.value, headers=record.headers,
                    on_delivery=functools.partial(on_delivery, str(row_id(event))),
                )
            producer.flush(self.timeout_s)
        except Exception as exc:  # the relay will publish them; the caller must not fail
            log.warning("outbox publish deferred to the relay: %s", exc)
        with lock:
            return list(acked)


def relay(engine: Engine, publisher: Publisher, *, older_than_s: float, limit: int = 500) -> int:
    """Publish rows left unpublished for longer than `older_than_s`. Rows are locked with
    SKIP LOCKED, so several relays (and the steps themselves) can run at once."""
    with engine.begin() as conn:
        rows = conn.execute(
            select(t.outbox.c.id, t.outbox.c.attributes, t.outbox.c.data)
            .where(
                t.outbox.c.published_at.is_(None),
                t.outbox.c.created_at < func.now() - timedelta(seconds=older_than_s),
            )
            .order_by(t.outbox.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return 0
        acked = publisher.produce([event_from_parts(r.attributes, r.data) for r in rows])
        if acked:
            mark_published(conn, acked)
        return len(acked)

