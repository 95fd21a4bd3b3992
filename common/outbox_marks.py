"""Marking published outbox rows, off the request path and in batches: one thread per
process (common.resources holds it) marks what was acknowledged in the last BATCH_EVERY_S
with one UPDATE, committed with synchronous_commit off. A mark lost to a crash or a
database outage (dropped with a warning) only means the relay publishes the row again, and
every consumer's inbox drops the duplicate; the step's own transaction stays fully durable.
Thread-safe; `flush()` waits until everything queued so far is written. The relay marks
what it re-sent with the same statement, in its own transaction (mark_published)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable

from psycopg_pool import ConnectionPool

from common import messaging_sql as sql
from common.pg import Connection, Tx, transaction

log = logging.getLogger(__name__)

BATCH_EVERY_S = 0.1  # far below the relay's age (outbox_relay_age_s): it never races it


def mark_published(tx: Tx, ids: Iterable[str | uuid.UUID]) -> None:
    """Mark these outbox rows published, in the caller's transaction."""
    tx.run(sql.MARK_PUBLISHED, {"ids": [i if isinstance(i, uuid.UUID) else uuid.UUID(i)
                                        for i in ids]})


def _mark_lazily(tx: Tx, ids: list[uuid.UUID]) -> None:
    tx.one(sql.ASYNC_COMMIT)
    mark_published(tx, ids)


class PublishedMarks:
    """The queue of acknowledged outbox ids of one pool, and the thread that marks them."""

    def __init__(self, pool: ConnectionPool[Connection]) -> None:
        self._pool = pool
        self._cond = threading.Condition()
        self._queued: list[uuid.UUID] = []
        self._queued_total = 0  # ids ever queued, and ids handled (written or dropped):
        self._handled_total = 0  # flush() waits for the second to catch up with the first
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="outbox-marks", daemon=True)
        self._thread.start()

    def add(self, ids: Iterable[str]) -> None:
        new = [uuid.UUID(i) for i in ids]
        with self._cond:
            # Only the first id of a batch needs the marker awake: while it gathers a batch
            # it waits out BATCH_EVERY_S regardless, and waking it for every step's ids cost
            # each event one more thread wake-up (docs/benchmarks.md, wake-ups per event).
            wake = not self._queued
            self._queued.extend(new)
            self._queued_total += len(new)
            if wake:
                self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every id queued before this call is marked (or dropped)."""
        with self._cond:
            target = self._queued_total
            return self._cond.wait_for(lambda: self._handled_total >= target, timeout)

    def close(self) -> None:
        """Write what is queued, then end the thread."""
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queued) or self._closed)
                if self._closed:
                    return
                # Let the ids of events being acknowledged right now join this batch
                # (close() ends the wait early: flush() has already written the rest).
                self._cond.wait_for(lambda: self._closed, BATCH_EVERY_S)
                if self._closed:
                    return
                batch, self._queued = self._queued, []
            self._write(batch)
            with self._cond:
                self._handled_total += len(batch)
                self._cond.notify_all()

    def _write(self, ids: list[uuid.UUID]) -> None:
        try:
            transaction(self._pool, lambda tx: _mark_lazily(tx, ids))
        except Exception as exc:  # published but not marked: the relay re-sends, inbox dedupes
            log.warning("could not mark %d outbox row(s) published: %s", len(ids), exc)
