"""The order state machine: the only code that changes an order's status.

    CREATED -> AWAITING_PAYMENT -> PAYMENT_PROCESSING -> PAID -> COMPLETED
    and CANCELLED (with a reason) from any non-terminal state.

Every change happens under the order's row lock, checks the transition, writes a history
row and emits the event that the new state implies, all in the caller's transaction.
Illegal transitions raise IllegalTransition and change nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal
from uuid import UUID

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy import event as sa_event

from common import tables as t
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

# The coarse view of seed 000 ("создан", "в обработке", "выполнен", "отменен").
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

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


def can_transition(current: Status, wanted: Status) -> bool:
    return wanted in TRANSITIONS[current]


def create_order(
    conn: Connection,
    outbox: Outbox,
    *,
    order_id: UUID,
    customer_id: str,
    lines: list[OrderLine],
    payment_mode: PaymentMode,
    shipping_address: str = "",
    actor: str,
) -> Order:
    """Insert a new order in CREATED with its items and history, and emit order.created."""
    total = sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))
    now = utc_now()
    conn.execute(insert(t.orders).values(
        id=order_id, customer_id=customer_id, status=Status.CREATED, payment_mode=payment_mode,
        total=total, shipping_address=shipping_address, created_at=now, updated_at=now,
    ))
    conn.execute(insert(t.order_items), [
        {"order_id": order_id, "sku": ln.sku, "quantity": ln.quantity, "unit_price": ln.unit_price}
        for ln in lines
    ])
    conn.execute(insert(t.order_status_history).values(
        order_id=order_id, from_status=None, to_status=Status.CREATED, actor=actor, at=now,
    ))
    outbox.emit(c.ORDER_CREATED, OrderCreated(
        order_id=order_id, customer_id=customer_id, items=lines, total=total,
        payment_mode=payment_mode, shipping_address=shipping_address, created_at=now,
    ), partition_key=str(order_id))
    _log_after_commit(conn, outbox, order_id, None, Status.CREATED, None)
    return Order(order_id, customer_id, Status.CREATED, None, payment_mode, total,
                 shipping_address, None, now)


def lock_order(conn: Connection, order_id: UUID) -> Order | None:
    """The order, row-locked until the transaction ends; None when it does not exist."""
    row = conn.execute(
        select(t.orders).where(t.orders.c.id == order_id).with_for_update()
    ).first()
    if row is None:
        return None
    return Order(row.id, row.customer_id, Status(row.status), row.reason, row.payment_mode,
                 row.total, row.shipping_address, row.payment_deadline, row.created_at)


def transition(
    conn: Connection,
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
    if not can_transition(order.status, to):
        raise IllegalTransition(order.id, order.status, to)
    if (to == Status.CANCELLED) != (reason is not None):
        raise ValueError("a reason is required exactly when cancelling")
    deadline = order.payment_deadline
    if to == Status.AWAITING_PAYMENT and payment_window is not None:
        deadline = utc_now() + payment_window
    conn.execute(
        update(t.orders).where(t.orders.c.id == order.id).values(
            status=to, reason=reason, payment_deadline=deadline, updated_at=func.now(),
            version=t.orders.c.version + 1,
        )
    )
    conn.execute(insert(t.order_status_history).values(
        order_id=order.id, from_status=order.status, to_status=to, reason=reason, actor=actor,
        event_id=event_id,
    ))
    _log_after_commit(conn, outbox, order.id, order.status, to, reason)
    key = str(order.id)
    if to == Status.PAYMENT_PROCESSING:
        outbox.emit(c.PAYMENT_REQUESTED, PaymentRequested(
            order_id=order.id, customer_id=order.customer_id, amount=order.total,
        ), partition_key=key)
    elif to == Status.PAID:
        outbox.emit(c.ORDER_PAID, OrderPaid(
            order_id=order.id, customer_id=order.customer_id, amount=order.total,
            shipping_address=order.shipping_address,
        ), partition_key=key)
    elif to == Status.COMPLETED:
        outbox.emit(c.ORDER_COMPLETED, OrderCompleted(
            order_id=order.id, customer_id=order.customer_id), partition_key=key)
    elif to == Status.CANCELLED:
        assert reason is not None
        outbox.emit(c.ORDER_CANCELLED, OrderCancelled(
            order_id=order.id, customer_id=order.customer_id, reason=reason,
            previous_status=order.status,
        ), partition_key=key)
    return Order(order.id, order.customer_id, to, reason, order.payment_mode, order.total,
                 order.shipping_address, deadline, order.created_at)


def _log_after_commit(
    conn: Connection, outbox: Outbox, order_id: UUID, before: Status | None, after: Status,
    reason: str | None,
) -> None:
    """One saga.order.status_changed line when the caller's transaction commits, none when it
    rolls back: a retried or failed transaction changed nothing and must not be counted.
    (SQLAlchemy's commit event fires as COMMIT is sent; a COMMIT that itself fails leaves a
    line whose step line says saga.step.retried.)"""
    fields = {
        "labels.order_id": str(order_id), "labels.order_status": after.value,
        "labels.order_status_from": before.value if before else None,
        "labels.cancel_reason": reason,
        "trace.id": outbox.trace.trace_id, "span.id": outbox.trace.span_id,
    }

    def on_commit(_conn: Connection) -> None:
        log_event(log, f"order {order_id}: {before or '-'} -> {after}",
                  action="saga.order.status_changed", outcome="success", fields=fields)

    sa_event.listen(conn, "commit", on_commit, once=True)
