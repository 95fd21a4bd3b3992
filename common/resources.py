"""One process's connections, built once where the process starts (common.bootstrap, the
api's main.py), passed to the step runtime or the router, and closed once: the database's
connection pool (psycopg: common/pg.py), the Kafka producer and the outbox marker, each
made on first use (never at import). `start()` warms them up in the background when the
server starts serving, so the first event after a cold start pays neither the first
connection nor the producer's id (docs/benchmarks.md, "One resources object per process").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Self, TypeVar

from cloudevents.http import CloudEvent
from confluent_kafka import Producer
from psycopg_pool import ConnectionPool

from common.kafka import producer_config
from common.outbox import Publisher
from common.outbox_marks import PublishedMarks
from common.pg import Connection, Tx, make_pool, transaction
from common.settings import Settings, get_settings
from common.unit_of_work import UnitOfWork, run_unit_of_work

T = TypeVar("T")

log = logging.getLogger("saga.resources")

# librdkafka's idempotent producer asks for its producer id on a 500 ms timer until its
# broker connection is up; a metadata answer makes it ask again at once. So the warm-up
# asks for metadata a few times over ~300 ms (docs/benchmarks.md, "One resources object
# per process").
_METADATA_REQUESTS = 15
_METADATA_PAUSE_S = 0.02


class Resources:
    """Thread-safe; every part is made on first use and closed by close()."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._pool: ConnectionPool[Connection] | None = None
        self._producer: Producer | None = None
        self._marks: PublishedMarks | None = None
        self._warm_up: threading.Thread | None = None
        self.publisher = Publisher(lambda: self.producer, settings.outbox_publish_timeout_s)

    @classmethod
    def from_environment(cls) -> Self:
        """The resources of this process, its settings read from the environment."""
        return cls(get_settings())

    @property
    def pool(self) -> ConnectionPool[Connection]:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    made = self._make_pool()
                    made.open(wait=False)  # its first connection opens in the background
                    self._pool = made
                pool = self._pool
        return pool

    def _make_pool(self) -> ConnectionPool[Connection]:
        return make_pool(self.settings)

    @property
    def producer(self) -> Producer:
        producer = self._producer
        if producer is None:
            with self._lock:
                if self._producer is None:
                    self._producer = Producer(producer_config(self.settings))
                producer = self._producer
        return producer

    @property
    def marks(self) -> PublishedMarks:
        marks = self._marks
        if marks is None:
            pool = self.pool
            with self._lock:
                if self._marks is None:
                    self._marks = PublishedMarks(pool)
                marks = self._marks
        return marks

    def ping(self) -> None:
        """Raise unless PostgreSQL answers on a pooled connection within a second (the
        readiness probes: the kubelet gives up on a probe after one)."""
        with self.pool.connection(timeout=1.0) as conn:
            ConnectionPool.check_connection(conn)

    def publish(self, events: list[CloudEvent]) -> int:
        """Produce, then queue the acknowledged rows to be marked (in a batch, off the
        caller's path); how many the broker acknowledged."""
        acked = self.publisher.produce(events)
        if acked:
            self.marks.add(acked)
        return len(acked)

    def flush_marks(self, timeout: float = 5.0) -> bool:
        """Wait until the marks queued so far are written (tests, benchmarks)."""
        marks = self._marks
        return True if marks is None else marks.flush(timeout)

    def run_unit_of_work(self, producer: str, work: Callable[[UnitOfWork], T], *,
                         caused_by: str | None = None) -> T:
        return run_unit_of_work(self.pool, self.publish, producer, work,
                                caused_by=caused_by)

    def transaction(self, work: Callable[[Tx], T]) -> T:
        """Run `work` in one transaction that emits no events (common.pg.transaction)."""
        return transaction(self.pool, work)

    # --- the process's life ---------------------------------------------------------------

    def start(self) -> None:
        """Warm up in a background thread (once): the server serves meanwhile."""
        with self._lock:
            if self._warm_up is not None:
                return
            self._warm_up = threading.Thread(target=self.warm_up, name="saga-warm-up",
                                             daemon=True)
        self._warm_up.start()

    def warm_up(self) -> None:
        """Open one database connection and create the producer, whichever is configured.
        A failure is logged, never raised: the first event reports it again, as a 503."""
        started = time.monotonic()
        producer = None
        if self.settings.kafka_bootstrap_servers:
            try:
                producer = self.producer  # its broker handshake starts now
            except Exception as exc:
                log.warning("warm-up: no Kafka producer: %s", exc)
        if self.settings.database_url is not None:
            try:
                with self.pool.connection():
                    pass  # back into the pool, open
            except Exception as exc:
                log.warning("warm-up: no database connection: %s", exc)
        if producer is not None:
            _ask_metadata(producer)
        log.debug("warm-up took %.0f ms", (time.monotonic() - started) * 1000)

    def close(self, timeout: float = 5.0) -> None:
        """Write the queued marks, deliver what the producer holds, close the pool."""
        with self._lock:
            marks, self._marks = self._marks, None
            producer, self._producer = self._producer, None
            pool, self._pool = self._pool, None
        if marks is not None:
            marks.close()  # its queued marks need the pool
        if producer is not None:
            producer.flush(timeout)
        if pool is not None:
            pool.close(timeout)


def _ask_metadata(producer: Producer) -> None:
    for _ in range(_METADATA_REQUESTS):
        try:
            producer.list_topics(timeout=1.0)
        except Exception as exc:
            log.warning("warm-up: the broker did not answer: %s", exc)
            return
        time.sleep(_METADATA_PAUSE_S)
