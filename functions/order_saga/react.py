"""The saga's reactions: each event names the state it answers and the state it leads to.

    stock.reserved      CREATED            -> AWAITING_PAYMENT (deadline = now + window);
                                              auto mode: -> PAYMENT_PROCESSING at once
                                              (the state machine emits payment.requested)
    stock.rejected      CREATED            -> CANCELLED(out_of_stock)
    payment.completed   PAYMENT_PROCESSING -> PAID (emits order.paid)
    payment.failed      PAYMENT_PROCESSING -> CANCELLED(insufficient_funds); reason
                                              order_cancelled: the order is cancelled already
    shipment.dispatched PAID               -> COMPLETED (emits order.completed)
    shipment.failed     PAID               -> CANCELLED(shipping_failed)

An event that finds the order in any other state (stock.reserved after the customer
cancelled, payment.completed after a timeout, a replay of an old event) changes nothing,
answers 2xx and says why in its log line (labels.ignored). Undoing its effects is not the
saga's job: order.cancelled reaches inventory and payments, which release, return, refund
or refuse by themselves. An unknown order is ignored the same way, so it is never retried.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from common.events.catalogue import ORDER_SAGA
from common.events.models import (
    CancelReason,
    PaymentCompleted,
    PaymentFailed,
    ShipmentDispatched,
    ShipmentFailed,
    StockRejected,
    StockReserved,
)
from common.order_state import Order, Status, lock_order, transition
from common.step import StepContext


def on_stock_reserved(ctx: StepContext, ev: StockReserved) -> None:
    order = _expect(ctx, ev.order_id, Status.CREATED, "await_payment")
    if order is None:
        return
    window = timedelta(seconds=ctx.settings.payment_window_s)
    order = _move(ctx, order, Status.AWAITING_PAYMENT, payment_window=window)
    if order.payment_mode == "auto":
        _move(ctx, order, Status.PAYMENT_PROCESSING)
        ctx.labels["saga_step"] = "request_payment"


def on_stock_rejected(ctx: StepContext, ev: StockRejected) -> None:
    if ev.reason == "order_cancelled":
        _ignore(ctx, "cancel", "stock refused because the order is cancelled already")
        return
    order = _expect(ctx, ev.order_id, Status.CREATED, "cancel")
    if order is not None:
        _move(ctx, order, Status.CANCELLED, reason="out_of_stock")


def on_payment_completed(ctx: StepContext, ev: PaymentCompleted) -> None:
    order = _expect(ctx, ev.order_id, Status.PAYMENT_PROCESSING, "paid")
    if order is not None:
        _move(ctx, order, Status.PAID)


def on_payment_failed(ctx: StepContext, ev: PaymentFailed) -> None:
    if ev.reason == "order_cancelled":
        # Payments refused because it saw the cancellation first: nothing was taken.
        _ignore(ctx, "cancel", "payment refused because the order is cancelled already")
        return
    order = _expect(ctx, ev.order_id, Status.PAYMENT_PROCESSING, "cancel")
    if order is not None:
        # no_account is reported to the customer like a lack of funds: no money to pay with.
        _move(ctx, order, Status.CANCELLED, reason="insufficient_funds")


def on_shipment_dispatched(ctx: StepContext, ev: ShipmentDispatched) -> None:
    order = _expect(ctx, ev.order_id, Status.PAID, "complete")
    if order is not None:
        _move(ctx, order, Status.COMPLETED)
        ctx.labels["tracking_number"] = ev.tracking_number


def on_shipment_failed(ctx: StepContext, ev: ShipmentFailed) -> None:
    order = _expect(ctx, ev.order_id, Status.PAID, "cancel")
    if order is not None:
        _move(ctx, order, Status.CANCELLED, reason="shipping_failed")


# --- helpers -----------------------------------------------------------------------------

def _expect(ctx: StepContext, order_id: UUID, expected: Status, step: str) -> Order | None:
    """The order, row-locked, when it is in `expected`; otherwise None and a log label."""
    ctx.labels["saga_step"] = step
    order = lock_order(ctx.conn, order_id)
    if order is None:
        _ignore(ctx, step, "unknown order")
        return None
    ctx.labels["order_status"] = order.status
    if order.status != expected:
        _ignore(ctx, step, f"order is {order.status}, the event expects {expected}")
        return None
    return order


def _ignore(ctx: StepContext, step: str, why: str) -> None:
    ctx.labels["saga_step"] = step
    ctx.labels["ignored"] = why


def _move(
    ctx: StepContext,
    order: Order,
    to: Status,
    *,
    reason: CancelReason | None = None,
    payment_window: timedelta | None = None,
) -> Order:
    moved = transition(
        ctx.conn, ctx.outbox, order, to, actor=ORDER_SAGA, reason=reason,
        event_id=str(ctx.event["id"]), payment_window=payment_window,
    )
    ctx.labels["order_status"] = moved.status
    return moved
