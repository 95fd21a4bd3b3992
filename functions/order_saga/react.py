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
from common.order_state import Order, Status
from common.step import StepContext
from functions.order_saga.orders import Orders


def on_stock_reserved(ctx: StepContext[Orders], ev: StockReserved) -> None:
    # An order that pays automatically goes on to PAYMENT_PROCESSING in the same statement
    # (the state machine emits payment.requested); confirm mode waits for POST .../pay. The
    # event's payment_mode saves reading the order first; the order row stays the truth.
    window = timedelta(seconds=ctx.settings.payment_window_s)
    path = [Status.AWAITING_PAYMENT]
    if ev.payment_mode == "auto":
        path.append(Status.PAYMENT_PROCESSING)
    order = _advance(ctx, ev.order_id, Status.CREATED, path, "await_payment",
                     payment_window=window)
    if order is not None and order.status == Status.AWAITING_PAYMENT \
            and order.payment_mode == "auto":  # an event without the hint
        order = _advance(ctx, ev.order_id, Status.AWAITING_PAYMENT,
                         [Status.PAYMENT_PROCESSING], "request_payment")
    if order is not None and order.status == Status.PAYMENT_PROCESSING:
        ctx.labels["saga_step"] = "request_payment"


def on_stock_rejected(ctx: StepContext[Orders], ev: StockRejected) -> None:
    if ev.reason == "order_cancelled":
        _ignore(ctx, "cancel", "stock refused because the order is cancelled already")
        return
    _advance(ctx, ev.order_id, Status.CREATED, [Status.CANCELLED], "cancel",
             reason="out_of_stock")


def on_payment_completed(ctx: StepContext[Orders], ev: PaymentCompleted) -> None:
    _advance(ctx, ev.order_id, Status.PAYMENT_PROCESSING, [Status.PAID], "paid")


def on_payment_failed(ctx: StepContext[Orders], ev: PaymentFailed) -> None:
    if ev.reason == "order_cancelled":
        # Payments refused because it saw the cancellation first: nothing was taken.
        _ignore(ctx, "cancel", "payment refused because the order is cancelled already")
        return
    # no_account is reported to the customer like a lack of funds: no money to pay with.
    _advance(ctx, ev.order_id, Status.PAYMENT_PROCESSING, [Status.CANCELLED], "cancel",
             reason="insufficient_funds")


def on_shipment_dispatched(ctx: StepContext[Orders], ev: ShipmentDispatched) -> None:
    if _advance(ctx, ev.order_id, Status.PAID, [Status.COMPLETED], "complete") is not None:
        ctx.labels["tracking_number"] = ev.tracking_number


def on_shipment_failed(ctx: StepContext[Orders], ev: ShipmentFailed) -> None:
    _advance(ctx, ev.order_id, Status.PAID, [Status.CANCELLED], "cancel",
             reason="shipping_failed")


# --- helpers -----------------------------------------------------------------------------

def _advance(
    ctx: StepContext[Orders],
    order_id: UUID,
    expected: Status,
    path: list[Status],
    step: str,
    *,
    reason: CancelReason | None = None,
    payment_window: timedelta | None = None,
) -> Order | None:
    """Move the order along `path` if it is in `expected` (one compare-and-set statement);
    otherwise change nothing and say why in the log line."""
    ctx.labels["saga_step"] = step
    moved = ctx.store.advance(order_id, expected=expected, path=path, actor=ORDER_SAGA,
                              reason=reason, event_id=str(ctx.event["id"]),
                              payment_window=payment_window)
    if moved is not None:
        ctx.labels["order_status"] = moved.status
        return moved
    current = ctx.store.read(order_id)
    if current is None:
        _ignore(ctx, step, "unknown order")
    else:
        ctx.labels["order_status"] = current.status
        _ignore(ctx, step, f"order is {current.status}, the event expects {expected}")
    return None


def _ignore(ctx: StepContext[Orders], step: str, why: str) -> None:
    ctx.labels["saga_step"] = step
    ctx.labels["ignored"] = why
