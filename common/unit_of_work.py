"""The unit of work every writer uses (the step runtime, the api, the timeouts sweep):
one transaction in which the effects and the events they cause are written together
(the transactional outbox), and, only after it committed, the events published.

    result = run_unit_of_work(settings, "api", lambda uow: place(uow.conn, uow.outbox(trace)))

- Each attempt is a fresh transaction with fresh outboxes: a serialization failure or a
  deadlock re-runs `work` (common.db.run_in_transaction), and a retry must not carry the
  events of the attempt that was rolled back.
- Publishing never fails the caller: what the broker did not acknowledge stays unpublished
  for the outbox relay (common/outbox.py).
- `republish` hands over events an earlier delivery wrote but did not get published (a
  duplicate delivery re-publishes them; docs/architecture.md, "The step contract").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from cloudevents.http import CloudEvent
from sqlalchemy import Connection

from common.db import get_engine, run_in_transaction
from common.outbox import Outbox, Publisher
from common.settings import Settings
from common.tracing import TraceContext

T = TypeVar("T")


@dataclass
class UnitOfWork:
    """One attempt's transaction and the events it will publish after commit."""

    conn: Connection
    producer: str  # the function writing: the outbox rows' producer and the events' source
    caused_by: str | None = None  # the event being handled, if any
    _outboxes: list[Outbox] = field(default_factory=list)
    _republish: list[CloudEvent] = field(default_factory=list)

    def outbox(self, trace: TraceContext) -> Outbox:
        """An outbox for events in `trace` (one per order when a transaction moves several)."""
        outbox = Outbox(self.producer, trace, caused_by=self.caused_by)
        self._outboxes.append(outbox)
        return outbox

    def republish(self, events: list[CloudEvent]) -> None:
        """Publish these already-written events after commit too."""
        self._republish.extend(events)

    @property
    def emitted(self) -> list[CloudEvent]:
        """The events this attempt emitted so far, in order."""
        return [event for outbox in self._outboxes for event in outbox.events]

    def _write(self) -> list[CloudEvent]:
        for outbox in self._outboxes:
            outbox.write(self.conn)
        return self._republish + self.emitted


def run_unit_of_work(settings: Settings, producer: str, work: Callable[[UnitOfWork], T],
                     *, caused_by: str | None = None) -> T:
    """Run `work` in one transaction, write its outboxes in it, commit, then publish."""
    engine = get_engine(settings)
    to_publish: list[CloudEvent] = []

    def attempt(conn: Connection) -> T:
        uow = UnitOfWork(conn, producer, caused_by)
        result = work(uow)
        to_publish[:] = uow._write()
        return result

    result = run_in_transaction(engine, attempt)
    if to_publish:
        Publisher(settings).publish(engine, to_publish)
    return result
