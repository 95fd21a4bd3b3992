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
from functions.payments.wallet import Wallet


def refund_or_void(ctx: StepContext[Wallet], cancelled: OrderCancelled) -> None:
    wallet, order_id = ctx.store, cancelled.order_id
    account = wallet.lock_account(cancelled.customer_id)
    payment = wallet.lock_payment(order_id)
    if payment is None:
        if wallet.claim_payment(order_id, cancelled.customer_id, Decimal("0.00"), "VOIDED",
                         cancelled.reason):
            ctx.labels["saga_step"] = "void.tombstone"
            return
        payment = wallet.lock_payment(order_id)  # a payment committed meanwhile
        assert payment is not None
    ctx.labels["payment_status"] = payment.status
    if payment.status not in ("FROZEN", "CAPTURED"):
        ctx.labels["saga_step"] = "refund.nothing_taken"
        return

    if account is None or account.customer_id != payment.customer_id:
        # Only if the event named another customer than the payment did: trust the payment.
        account = wallet.lock_account(payment.customer_id)
    assert account is not None, "a FROZEN or CAPTURED payment has an account (ledger FK)"
    if payment.status == "FROZEN":
        ctx.action = "saga.compensation.unfrozen"
        wallet.post(account, order_id, ("unfreeze", payment.amount))
        wallet.set_payment_status(order_id, "VOIDED")
        ctx.labels["saga_step"] = "unfreeze"
        return
    ctx.action = "saga.compensation.refunded"
    wallet.post(account, order_id, ("refund", payment.amount))
    wallet.set_payment_status(order_id, "REFUNDED")
    ctx.emit(c.PAYMENT_REFUNDED, PaymentRefunded(
        order_id=order_id, customer_id=payment.customer_id, amount=payment.amount,
    ))
    ctx.labels["saga_step"] = "refund"
