"""The unit of work every writer uses (the step runtime, the api, the timeouts sweep): one
transaction in which the effects and the events they cause are written together (the
transactional outbox), then, only after it committed, the events published; run by the
process's resources: `resources.run_unit_of_work("api", lambda uow: ...)`. Each attempt is
a fresh transaction with fresh outboxes (a serialization failure re-runs `work`, which must
not carry the rolled-back attempt's events). Publishing never fails the caller: what the
broker did not acknowledge stays unpublished for the outbox relay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from cloudevents.http import CloudEvent
from psycopg_pool import ConnectionPool

from common import messaging_sql as sql
from common.outbox import Outbox, unpublished_caused_by
from common.pg import Connection, Tx, transaction
from common.settings import Settings
from common.tracing import TraceContext

T = TypeVar("T")
R = TypeVar("R")

# A function's data access in one transaction: made from the transaction and the outbox its
# events go to (a fake unit of work makes an in-memory one instead).
StoreFactory = Callable[[Tx, Outbox], R]


class UnitOfWork(Protocol):
    """One attempt's transaction, as the step runtime and the functions see it."""

    producer: str  # the function writing: the outbox rows' producer and the events' source

    @property
    def tx(self) -> Tx: ...

    def outbox(self, trace: TraceContext) -> Outbox: ...

    def store(self, factory: StoreFactory[R], outbox: Outbox) -> R: ...

    def first_delivery(self, consumer: str, event_id: str, event_type: str) -> bool: ...

    def unpublished(self, consumer: str, event_id: str) -> list[CloudEvent]: ...

    def republish(self, events: Sequence[CloudEvent]) -> None: ...

    @property
    def emitted(self) -> list[CloudEvent]: ...


class UnitsOfWork(Protocol):
    """What runs units of work: the process's resources (common.resources), or a fake."""

    @property
    def settings(self) -> Settings: ...

    def run_unit_of_work(self, producer: str, work: Callable[[UnitOfWork], T], *,
                         caused_by: str | None = None) -> T: ...


@dataclass
class SqlUnitOfWork:
    """One attempt's transaction and the events it will publish after commit."""

    tx: Tx
    producer: str
    caused_by: str | None = None  # the event being handled, if any
    _outboxes: list[Outbox] = field(default_factory=list)
    _republish: list[CloudEvent] = field(default_factory=list)

    def outbox(self, trace: TraceContext) -> Outbox:
        """An outbox for events in `trace` (one per order when a transaction moves several)."""
        outbox = Outbox(self.producer, trace, caused_by=self.caused_by)
        self._outboxes.append(outbox)
        return outbox

    def store(self, factory: StoreFactory[R], outbox: Outbox) -> R:
        return factory(self.tx, outbox)

    def first_delivery(self, consumer: str, event_id: str, event_type: str) -> bool:
        """Insert the inbox row; False when the event was handled before."""
        return self.tx.one(sql.CLAIM_INBOX, {"consumer": consumer, "event_id": event_id,
                                             "event_type": event_type}) is not None

    def unpublished(self, consumer: str, event_id: str) -> list[CloudEvent]:
        """What an earlier delivery of `event_id` emitted but did not get published."""
        return unpublished_caused_by(self.tx, consumer, event_id)

    def republish(self, events: Sequence[CloudEvent]) -> None:
        """Publish these already-written events after commit too (a duplicate delivery
        re-publishes what its first delivery left; docs/architecture.md, "The step
        contract")."""
        self._republish.extend(events)

    @property
    def emitted(self) -> list[CloudEvent]:
        """The events this attempt emitted so far, in order."""
        return [event for outbox in self._outboxes for event in outbox.events]

    def _write(self) -> list[CloudEvent]:
        emitted = self.emitted
        if emitted:  # one statement for every outbox of the transaction
            Outbox.write_all(self.tx, emitted, self.producer, self.caused_by)
        return self._republish + emitted


def run_unit_of_work(pool: ConnectionPool[Connection],
                     publish: Callable[[list[CloudEvent]], object], producer: str,
                     work: Callable[[UnitOfWork], T], *, caused_by: str | None = None) -> T:
    """Run `work` in one transaction, write its outboxes in it, commit, then publish."""
    to_publish: list[CloudEvent] = []

    def attempt(tx: Tx) -> T:
        uow = SqlUnitOfWork(tx, producer, caused_by)
        result = work(uow)
        to_publish[:] = uow._write()
        return result

    result = transaction(pool, attempt)
    if to_publish:
        publish(to_publish)
    return result
