"""Turn saga outcomes into notifications the customer can read.

The step's inbox row makes each event write at most one notification. The notification id
is also derived from the event id, so even a replay that bypassed the inbox (an operator
clearing it) could not write a second copy.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from common.events.models import CancelReason, OrderCancelled, OrderCompleted, PaymentRefunded
from common.step import StepContext
from functions.notifications import sql

# One plain sentence per cancellation reason.
REASON_TEXT: dict[CancelReason, str] = {
    "out_of_stock": "Some of the items you ordered are out of stock.",
    "insufficient_funds": "Your wallet did not hold enough money to pay for it.",
    "payment_timeout": "It was not paid within the payment window.",
    "cancelled_by_customer": "You cancelled it yourself.",
    "shipping_failed": "We could not ship it to the address you gave.",
    "cancelled_by_operator": "Our support team cancelled it.",
}

_NAMESPACE = uuid.UUID("5f0c7a52-7d3e-4f1e-9a51-2b9c1f3a8e10")


def _short(order_id: UUID) -> str:
    return str(order_id)[:8]


def on_order_completed(ctx: StepContext[None], ev: OrderCompleted) -> None:
    _notify(ctx, ev.customer_id, ev.order_id, "order.completed",
            f"Order {_short(ev.order_id)} is on its way",
            "Your order is paid and has been handed to the carrier.")


def on_order_cancelled(ctx: StepContext[None], ev: OrderCancelled) -> None:
    explanation = REASON_TEXT[ev.reason]
    # Money may have been taken only once payment had started, and not when the payment
    # itself is what failed; the refund then gets its own notification (payment.refunded).
    maybe_paid = ev.previous_status == "PAID" or (
        ev.previous_status == "PAYMENT_PROCESSING" and ev.reason != "insufficient_funds")
    money = " Any money taken for it will be refunded to your wallet." if maybe_paid else ""
    _notify(ctx, ev.customer_id, ev.order_id, "order.cancelled",
            f"Order {_short(ev.order_id)} was cancelled", f"{explanation}{money}")
    ctx.labels["reason"] = ev.reason


def on_payment_refunded(ctx: StepContext[None], ev: PaymentRefunded) -> None:
    _notify(ctx, ev.customer_id, ev.order_id, "payment.refunded",
            f"Refund for order {_short(ev.order_id)}",
            f"{ev.amount} has been returned to your wallet.")


def _notify(
    ctx: StepContext[None], customer_id: str, order_id: UUID, kind: str, title: str, body: str
) -> None:
    notification_id = uuid.uuid5(_NAMESPACE, f"{ctx.consumer}/{ctx.event['id']}")
    ctx.tx.run(sql.INSERT_NOTIFICATION, {
        "id": notification_id, "customer_id": customer_id, "order_id": order_id,
        "kind": kind, "title": title, "body": body})
    ctx.labels["saga_step"] = f"notify.{kind}"
