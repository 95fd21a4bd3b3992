"""Compensation on order.cancelled: give the money back, or make sure it is never taken.

    no payments row -> VOIDED row (amount 0): the cancellation overtook payment.requested,
                       which will find it and answer payment.failed(order_cancelled)
    FROZEN          -> unfreeze (money held, not taken): VOIDED
    CAPTURED        -> refund: REFUNDED + payment.refunded
    FAILED / VOIDED / REFUNDED -> nothing to give back
"""

from __future__ import annotations

from decimal import Decimal

from common.events import catalogue as c
from common.events.models import OrderCancelled, PaymentRefunded
from common.step import StepContext
from functions.payments.wallet import (
    claim_payment,
    lock_account,
    lock_payment,
    post,
    set_payment_status,
)


def refund_or_void(ctx: StepContext, cancelled: OrderCancelled) -> None:
    conn, order_id = ctx.conn, cancelled.order_id
    account = lock_account(conn, cancelled.customer_id)
    payment = lock_payment(conn, order_id)
    if payment is None:
        if claim_payment(conn, order_id, cancelled.customer_id, Decimal("0.00"), "VOIDED",
                         cancelled.reason):
            ctx.labels["saga_step"] = "void.tombstone"
            return
        payment = lock_payment(conn, order_id)  # a payment committed meanwhile
        assert payment is not None
    ctx.labels["payment_status"] = payment.status
    if payment.status not in ("FROZEN", "CAPTURED"):
        ctx.labels["saga_step"] = "refund.nothing_taken"
        return

    if account is None or account.customer_id != payment.customer_id:
        # Only if the event named another customer than the payment did: trust the payment.
        account = lock_account(conn, payment.customer_id)
    assert account is not None, "a FROZEN or CAPTURED payment has an account (ledger FK)"
    if payment.status == "FROZEN":
        ctx.action = "saga.compensation.unfrozen"
        post(conn, account, order_id, ("unfreeze", payment.amount))
        set_payment_status(conn, order_id, "VOIDED")
        ctx.labels["saga_step"] = "unfreeze"
        return
    ctx.action = "saga.compensation.refunded"
    post(conn, account, order_id, ("refund", payment.amount))
    set_payment_status(conn, order_id, "REFUNDED")
    ctx.emit(c.PAYMENT_REFUNDED, PaymentRefunded(
        order_id=order_id, customer_id=payment.customer_id, amount=payment.amount,
    ))
    ctx.labels["saga_step"] = "refund"
