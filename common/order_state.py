"""The order state machine: the only code that changes an order's status.

    CREATED -> AWAITING_PAYMENT -> PAYMENT_PROCESSING -> PAID -> COMPLETED
    and CANCELLED (with a reason) from any non-terminal state.

Every change happens under the order's row lock, checks the transition, writes a history
row and emits the event that the new state implies, all in the caller's transaction.
Illegal transitions raise IllegalTransition and change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal
from uuid import UUID

from common import order_sql as sql
from common.events import catalogue as c
from common.events.models import (
    CancelReason,
    OrderCancelled,
    OrderCompleted,
    OrderCreated,
    OrderLine,
    OrderPaid,
    PaymentMode,
    PaymentRequested,
    utc_now,
)
from common.logging import log_event
from common.outbox import Outbox
from common.pg import Row, Tx
from common.tracing import TraceContext, parse_traceparent

log = logging.getLogger("saga.order")


class Status(StrEnum):
    CREATED = "CREATED"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    PAYMENT_PROCESSING = "PAYMENT_PROCESSING"
    PAID = "PAID"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({Status.COMPLETED, Status.CANCELLED})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.AWAITING_PAYMENT, Status.CANCELLED}),
    Status.AWAITING_PAYMENT: frozenset({Status.PAYMENT_PROCESSING, Status.CANCELLED}),
    Status.PAYMENT_PROCESSING: frozenset({Status.PAID, Status.CANCELLED}),
    Status.PAID: frozenset({Status.COMPLETED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.CANCELLED: frozenset(),
}

StatusGroup = Literal["created", "processing", "completed", "cancelled"]

# The coarse view the order-service requirements name ("создан", "в обработке", "выполнен",
# "отменен"; docs/architecture.md, "What the original requirements asked for").
STATUS_GROUP: dict[Status, StatusGroup] = {
    Status.CREATED: "created",
    Status.AWAITING_PAYMENT: "processing",
    Status.PAYMENT_PROCESSING: "processing",
    Status.PAID: "processing",
    Status.COMPLETED: "completed",
    Status.CANCELLED: "cancelled",
}


class IllegalTransition(Exception):
    def __init__(self, order_id: UUID, current: Status, wanted: Status) -> None:
        super().__init__(f"order {order_id}: {current} -> {wanted} is not allowed")
        self.order_id = order_id
        self.current = current
        self.wanted = wanted


@dataclass(frozen=True)
class Order:
    id: UUID
    customer_id: str
    status: Status
    reason: str | None
    payment_mode: PaymentMode
    total: Decimal
    shipping_address: str
    payment_deadline: datetime | None
    created_at: datetime
    # The span that created the order (docs/observability.md, "One order, its traces").
    traceparent: str | None

    @property
    def trace(self) -> TraceContext | None:
        """The order's own trace context; None for an order older than the column."""
        return parse_traceparent(self.traceparent)


def can_transition(current: Status, wanted: Status) -> bool:
    return wanted in TRANSITIONS[current]


def create_order(
    tx: Tx,
    outbox: Outbox,
    *,
    order_id: UUID,
    customer_id: str,
    lines: list[OrderLine],
    payment_mode: PaymentMode,
    shipping_address: str = "",
    actor: str,
) -> Order:
    """Insert a new order in CREATED with its items and history, and emit order.created.
    The order keeps the outbox's trace context, the span that creates it, as its own."""
    total = sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))
    now = utc_now()
    tx.run(sql.CREATE_ORDER, {
        "order_id": order_id, "customer_id": customer_id, "payment_mode": payment_mode,
        "total": total, "shipping_address": shipping_address, "at": now, "actor": actor,
        "traceparent": outbox.trace.traceparent,
        "skus": [ln.sku for ln in lines], "quantities": [ln.quantity for ln in lines],
        "prices": [ln.unit_price for ln in lines],
    })
    outbox.emit(c.ORDER_CREATED, OrderCreated(
        order_id=order_id, customer_id=customer_id, items=lines, total=total,
        payment_mode=payment_mode, shipping_address=shipping_address, created_at=now,
    ), partition_key=str(order_id))
    _log_after_commit(tx, outbox, order_id, None, Status.CREATED, None)
    return Order(order_id, customer_id, Status.CREATED, None, payment_mode, total,
                 shipping_address, None, now, outbox.trace.traceparent)


def lock_order(tx: Tx, order_id: UUID) -> Order | None:
    """The order, row-locked until the transaction ends; None when it does not exist."""
    row = tx.one(sql.LOCK_ORDER, {"order_id": order_id})
    return None if row is None else _order_of(row)


def read_order(tx: Tx, order_id: UUID) -> Order | None:
    """The order as it is now, without a lock (to explain why a transition did not apply)."""
    row = tx.one(sql.READ_ORDER, {"order_id": order_id})
    return None if row is None else _order_of(row)


def transition(
    tx: Tx,
    outbox: Outbox,
    order: Order,
    to: Status,
    *,
    actor: str,
    reason: CancelReason | None = None,
    event_id: str | None = None,
    payment_window: timedelta | None = None,
) -> Order:
    """Move a locked order to `to`, record it, and emit what the new state implies:
    PAYMENT_PROCESSING -> payment.requested, PAID -> order.paid, COMPLETED -> order.completed,
    CANCELLED -> order.cancelled (which triggers every compensation)."""
    moved = advance(tx, outbox, order.id, expected=order.status, path=[to], actor=actor,
                    reason=reason, event_id=event_id, payment_window=payment_window)
    if moved is None:  # the caller's lock says this cannot happen; refuse rather than guess
        raise IllegalTransition(order.id, order.status, to)
    return moved


def advance(
    tx: Tx,
    outbox: Outbox,
    order_id: UUID,
    *,
    expected: Status,
    path: Sequence[Status],
    actor: str,
    reason: CancelReason | None = None,
    event_id: str | None = None,
    payment_window: timedelta | None = None,
) -> Order | None:
    """Move the order from `expected` through every status of `path` (each step a legal
    transition), if and only if it is in `expected` now: None when it is not (or does not
    exist), and nothing is written. `reason` belongs to the last step (CANCELLED).

    One statement (compare-and-set UPDATE, which takes the row lock, plus one history row
    per step): a step that finds the order where it expects it costs one round trip."""
    steps = checked_steps(order_id, expected, path, reason)
    final = path[-1]
    deadline = payment_deadline(path, payment_window)
    row = tx.one(sql.ADVANCE, {
        "order_id": order_id, "from_status": expected.value, "to_status": final.value,
        "reason": reason,
        "deadline": deadline, "actor": actor, "event_id": event_id,
        "froms": [b.value for b, _ in steps], "tos": [a.value for _, a in steps],
        "reasons": [None] * (len(steps) - 1) + [reason],
    })
    if row is None:
        return None
    moved = _order_of(row)
    for before, after in steps:
        step_reason = reason if after == final else None
        _log_after_commit(tx, outbox, order_id, before, after, step_reason)
        emit_implied(outbox, moved, before, after, step_reason)
    return moved


def checked_steps(order_id: UUID, expected: Status, path: Sequence[Status],
                  reason: CancelReason | None) -> list[tuple[Status, Status]]:
    """The (from, to) steps of `path` from `expected`; IllegalTransition for a step the
    state machine forbids, ValueError unless `reason` is given exactly when cancelling."""
    steps = list(zip([expected, *path[:-1]], path, strict=True))
    for before, after in steps:
        if not can_transition(before, after):
            raise IllegalTransition(order_id, before, after)
    if (path[-1] == Status.CANCELLED) != (reason is not None):
        raise ValueError("a reason is required exactly when cancelling")
    return steps


def payment_deadline(path: Sequence[Status], window: timedelta | None) -> datetime | None:
    """The payment deadline a move along `path` sets: now + window on AWAITING_PAYMENT."""
    if Status.AWAITING_PAYMENT in path and window is not None:
        return utc_now() + window
    return None


def emit_implied(outbox: Outbox, order: Order, before: Status, status: Status,
                 reason: CancelReason | None) -> None:
    """The event a new status implies (transition's docstring), into `outbox`."""
    key = str(order.id)
    if status == Status.PAYMENT_PROCESSING:
        outbox.emit(c.PAYMENT_REQUESTED, PaymentRequested(
            order_id=order.id, customer_id=order.customer_id, amount=order.total,
        ), partition_key=key)
    elif status == Status.PAID:
        outbox.emit(c.ORDER_PAID, OrderPaid(
            order_id=order.id, customer_id=order.customer_id, amount=order.total,
            shipping_address=order.shipping_address,
        ), partition_key=key)
    elif status == Status.COMPLETED:
        outbox.emit(c.ORDER_COMPLETED, OrderCompleted(
            order_id=order.id, customer_id=order.customer_id), partition_key=key)
    elif status == Status.CANCELLED:
        assert reason is not None
        outbox.emit(c.ORDER_CANCELLED, OrderCancelled(
            order_id=order.id, customer_id=order.customer_id, reason=reason,
            previous_status=before,
        ), partition_key=key)


def _order_of(row: Row) -> Order:
    (order_id, customer_id, status, reason, payment_mode, total, shipping_address,
     payment_deadline, created_at, traceparent) = row
    return Order(order_id, customer_id, Status(status), reason, payment_mode, total,
                 shipping_address, payment_deadline, created_at, traceparent)


def _log_after_commit(
    tx: Tx, outbox: Outbox, order_id: UUID, before: Status | None, after: Status,
    reason: str | None,
) -> None:
    """One saga.order.status_changed line once the caller's transaction committed, none when
    it rolls back: a retried or failed transaction changed nothing and must not be
    counted."""
    fields = {
        "labels.order_id": str(order_id), "labels.order_status": after.value,
        "labels.order_status_from": before.value if before else None,
        "labels.cancel_reason": reason,
        "trace.id": outbox.trace.trace_id, "span.id": outbox.trace.span_id,
    }

    tx.after_commit(lambda: log_event(
        log, f"order {order_id}: {before or '-'} -> {after}",
        action="saga.order.status_changed", outcome="success", fields=fields))
