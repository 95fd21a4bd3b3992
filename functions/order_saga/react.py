"""The saga's reactions. Each event moves the order from the state it expects:
stock.reserved CREATED -> AWAITING_PAYMENT (deadline = now + window), and at once on to
PAYMENT_PROCESSING in auto mode; stock.rejected CREATED -> CANCELLED(out_of_stock);
payment.completed PAYMENT_PROCESSING -> PAID; payment.failed -> CANCELLED(insufficient_funds)
unless its reason is order_cancelled; shipment.dispatched PAID -> COMPLETED; shipment.failed
PAID -> CANCELLED(shipping_failed). The state machine emits what each new state implies.
An event that finds the order elsewhere, or no order, changes nothing, answers 2xx and says
why (labels.ignored): inventory and payments compensate on order.cancelled themselves."""

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
