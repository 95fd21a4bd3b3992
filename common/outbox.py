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

from cloudevents.http import CloudEvent
from confluent_kafka import KafkaError, Message, Producer
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from common import messaging_sql as sql
from common.cloudevents_kafka import attributes_of, event_from_parts, new_event, to_kafka
from common.dead_letters import REDRIVE_EXTENSION
from common.outbox_marks import mark_published
from common.pg import Connection, Tx, transaction
from common.tracing import TraceContext

log = logging.getLogger(__name__)


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

    def write(self, tx: Tx) -> None:
        """Insert the emitted events in the caller's transaction (a round trip each)."""
        self.write_all(tx, self.events, self.producer, self.caused_by)

    @staticmethod
    def write_all(tx: Tx, events: Sequence[CloudEvent], producer: str,
                  caused_by: str | None) -> None:
        """Insert `events` (of one producer and cause) in the caller's transaction."""
        tx.many(sql.WRITE_OUTBOX, [
            {"id": row_id(e), "type": e["type"], "partition_key": e["partitionkey"],
             "attributes": Jsonb(attributes_of(e)), "data": Jsonb(e.get_data()),
             "producer": producer, "caused_by": caused_by}
            for e in events
        ])


def unpublished_caused_by(tx: Tx, producer: str, caused_by: str) -> list[CloudEvent]:
    """What an earlier delivery of `caused_by` emitted but did not get published."""
    rows = tx.all(sql.UNPUBLISHED_CAUSED_BY, {"producer": producer, "caused_by": caused_by})
    return [event_from_parts(attributes, data) for attributes, data in rows]


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


def relay(pool: ConnectionPool[Connection], publisher: Publisher, *, older_than_s: float,
          limit: int = 500) -> int:
    """Publish rows left unpublished for longer than `older_than_s`. Rows are locked with
    SKIP LOCKED, so several relays (and the steps themselves) can run at once."""

    def work(tx: Tx) -> int:
        rows = tx.all(sql.UNPUBLISHED_OLDER_THAN, {"age_s": older_than_s, "limit": limit})
        if not rows:
            return 0
        acked = publisher.produce([event_from_parts(attributes, data)
                                   for _id, attributes, data in rows])
        if acked:
            mark_published(tx, acked)
        return len(acked)

    return transaction(pool, work)

