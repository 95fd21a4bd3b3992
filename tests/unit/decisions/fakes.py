"""A fake unit of work and in-memory stores, so the functions' decisions run through the
real step runtime (parse, inbox, handler, outbox, log line) without PostgreSQL or a
broker (cosmicpython's FakeUnitOfWork). Committed state lives in plain dicts; a unit that
raises leaves what it changed, which no test here relies on."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from cloudevents.http import CloudEvent

from common.events.models import CancelReason, EventData, PaymentMode
from common.order_state import Order, Status, checked_steps, emit_implied, payment_deadline
from common.outbox import Outbox
from common.pg import Tx
from common.settings import Settings
from common.step import StepRuntime
from common.tracing import TraceContext
from common.unit_of_work import StoreFactory, UnitOfWork
from functions.payments.wallet import Account, LedgerKind, Payment, moved
from functions.shipping.dispatch import Status as ShipmentStatus
from tests.helpers import make_event

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class FakeUnitOfWork:
    """One attempt: the inbox and the store are the FakeUnits' own; events are kept."""

    units: FakeUnits
    producer: str
    caused_by: str | None
    _outboxes: list[Outbox] = field(default_factory=list)
    _republish: list[CloudEvent] = field(default_factory=list)

    @property
    def tx(self) -> Tx:
        raise AssertionError("a handler with a store of its own used the transaction")

    def outbox(self, trace: TraceContext) -> Outbox:
        outbox = Outbox(self.producer, trace, caused_by=self.caused_by)
        self._outboxes.append(outbox)
        return outbox

    def store(self, factory: StoreFactory[R], outbox: Outbox) -> R:
        made: R = self.units.store(outbox)
        return made

    def first_delivery(self, consumer: str, event_id: str, event_type: str) -> bool:
        if (consumer, event_id) in self.units.inbox:
            return False
        self.units.inbox.add((consumer, event_id))
        return True

    def unpublished(self, consumer: str, event_id: str) -> list[CloudEvent]:
        return []  # the fake broker acknowledges everything

    def republish(self, events: Sequence[CloudEvent]) -> None:
        self._republish.extend(events)

    @property
    def emitted(self) -> list[CloudEvent]:
        return [event for outbox in self._outboxes for event in outbox.events]


class FakeUnits:
    """What the step runtime runs its units of work on: a store made per unit from
    `store(outbox)`, an inbox, and the events published after each commit."""

    def __init__(self, store: Callable[[Outbox], Any], settings: Settings | None = None
                 ) -> None:
        self.store = store
        self.settings = settings or Settings(payment_window_s=300)
        self.inbox: set[tuple[str, str]] = set()
        self.published: list[CloudEvent] = []

    def run_unit_of_work(self, producer: str, work: Callable[[UnitOfWork], T], *,
                         caused_by: str | None = None) -> T:
        uow = FakeUnitOfWork(self, producer, caused_by)
        result = work(uow)
        self.published.extend(uow._republish + uow.emitted)
        return result


@dataclass
class Step:
    """A function's step runtime on fakes, and what one delivery did."""

    runtime: StepRuntime
    units: FakeUnits
    caplog: pytest.LogCaptureFixture

    def deliver(self, event: CloudEvent) -> Delivery:
        before = len(self.units.published)
        self.caplog.clear()
        with self.caplog.at_level(logging.INFO, logger="saga.step"):
            self.runtime.handle(event)
        [line] = [r for r in self.caplog.records if r.name == "saga.step"]
        return Delivery(self.units.published[before:], line)

    def send(self, event_type: str, data: EventData) -> Delivery:
        return self.deliver(make_event(event_type, data, order_id=data.order_id))


@dataclass(frozen=True)
class Delivery:
    emitted: list[CloudEvent]
    line: logging.LogRecord

    @property
    def types(self) -> list[str]:
        return [str(e["type"]) for e in self.emitted]

    @property
    def action(self) -> str:
        return str(getattr(self.line, "event.action"))

    def label(self, name: str) -> str | None:
        value = getattr(self.line, f"labels.{name}", None)
        return None if value is None else str(value)

    def data(self, index: int = 0) -> dict[str, Any]:
        data = self.emitted[index].get_data()
        assert isinstance(data, dict)
        return data


def step(consumer: str, handlers: Any, store: Callable[[Outbox], Any],
         caplog: pytest.LogCaptureFixture) -> Step:
    units = FakeUnits(store)
    return Step(StepRuntime(consumer, handlers, units), units, caplog)


# --- the stores, in memory --------------------------------------------------------------

class FakeOrders:
    """Orders, moved by the state machine's own rules (common.order_state)."""

    def __init__(self, orders: dict[uuid.UUID, Order], outbox: Outbox) -> None:
        self.orders = orders
        self.outbox = outbox

    def advance(self, order_id: uuid.UUID, *, expected: Status, path: Sequence[Status],
                actor: str, reason: CancelReason | None = None, event_id: str | None = None,
                payment_window: timedelta | None = None) -> Order | None:
        steps = checked_steps(order_id, expected, path, reason)
        order = self.orders.get(order_id)
        if order is None or order.status != expected:
            return None
        deadline = payment_deadline(path, payment_window) or order.payment_deadline
        now = replace(order, status=path[-1], reason=reason, payment_deadline=deadline)
        self.orders[order_id] = now
        for before, after in steps:
            emit_implied(self.outbox, now, before, after, reason if after == path[-1] else None)
        return now

    def read(self, order_id: uuid.UUID) -> Order | None:
        return self.orders.get(order_id)


def an_order(status: Status = Status.CREATED, *, mode: PaymentMode = "auto",
             total: str = "10.00", address: str = "1 Main Street") -> Order:
    from common.events.models import utc_now

    return Order(uuid.uuid4(), "alice", status, None, mode, Decimal(total), address, None,
                 utc_now(), None)


class FakeWallet:
    def __init__(self, accounts: dict[str, Account], payments: dict[uuid.UUID, Payment],
                 ledger: list[dict[str, object]]) -> None:
        self.accounts, self.payments, self.ledger = accounts, payments, ledger

    def lock_account(self, customer_id: str) -> Account | None:
        return self.accounts.get(customer_id)

    def lock_payment(self, order_id: uuid.UUID) -> Payment | None:
        return self.payments.get(order_id)

    def claim_payment(self, order_id: uuid.UUID, customer_id: str, amount: Decimal,
                      status: str, reason: str | None = None) -> bool:
        if order_id in self.payments:
            return False
        self.payments[order_id] = Payment(order_id, customer_id, amount, status)
        return True

    def set_payment_status(self, order_id: uuid.UUID, status: str) -> None:
        self.payments[order_id] = replace(self.payments[order_id], status=status)

    def post(self, account: Account, order_id: uuid.UUID,
             *movements: tuple[LedgerKind, Decimal]) -> Account:
        after, rows = moved(account, order_id, movements)
        self.accounts[account.customer_id] = after
        self.ledger.extend(rows)
        return after


@dataclass
class FakeStock:
    """Stock rows (sku -> [on_hand, reserved]), reservations and their items."""

    stock: dict[str, list[int]] = field(default_factory=dict)
    reservations: dict[uuid.UUID, str] = field(default_factory=dict)
    items: dict[uuid.UUID, dict[str, int]] = field(default_factory=dict)
    movements: list[tuple[str, str, int, int]] = field(default_factory=list)

    def __call__(self, _outbox: Outbox) -> FakeStock:
        return self  # one store for every unit of work

    def claim_reservation(self, order_id: uuid.UUID, status: str) -> bool:
        if order_id in self.reservations:
            return False
        self.reservations[order_id] = status
        return True

    def available(self, skus: list[str]) -> dict[str, int]:
        return {sku: self.stock[sku][0] - self.stock[sku][1] for sku in skus
                if sku in self.stock}

    def record_items(self, order_id: uuid.UUID, items: dict[str, int]) -> None:
        self.items[order_id] = dict(items)

    def lock_reservation(self, order_id: uuid.UUID) -> str | None:
        return self.reservations.get(order_id)

    def move_reservation(self, order_id: uuid.UUID, expected: str, status: str) -> bool:
        if self.reservations.get(order_id) != expected:
            return False
        self.reservations[order_id] = status
        return True

    def set_reservation_status(self, order_id: uuid.UUID, status: str) -> None:
        self.reservations[order_id] = status

    def reserved_items(self, order_id: uuid.UUID) -> dict[str, int]:
        return dict(self.items.get(order_id, {}))

    def move_stock(self, order_id: uuid.UUID, items: dict[str, int], *, kind: str,
                   on_hand_sign: int, reserved_sign: int) -> None:
        for sku, qty in sorted(items.items()):
            self.stock[sku][0] += on_hand_sign * qty
            self.stock[sku][1] += reserved_sign * qty
            self.movements.append((sku, kind, on_hand_sign * qty, reserved_sign * qty))


@dataclass
class FakeShipments:
    rows: dict[uuid.UUID, tuple[ShipmentStatus, str | None, str | None]] = field(
        default_factory=dict)  # status, tracking number, reason

    def __call__(self, _outbox: Outbox) -> FakeShipments:
        return self

    def claim(self, order_id: uuid.UUID, status: ShipmentStatus, tracking: str | None,
              address: str, reason: str | None) -> bool:
        if order_id in self.rows:
            return False
        self.rows[order_id] = (status, tracking, reason)
        return True

    def existing(self, order_id: uuid.UUID) -> str | None:
        row = self.rows.get(order_id)
        if row is None:
            return None
        status, _, reason = row
        return f"{status}:{reason}" if reason else status


def event_for(event_type: str, data: EventData) -> CloudEvent:
    return make_event(event_type, data, order_id=data.order_id)
