"""On payment.requested: check, freeze and capture the order's amount, at most once per
order. The order's payments row decides everything that can happen twice:
    none      -> no account or balance < amount: FAILED + payment.failed(no_account or
                 insufficient_funds); else freeze, capture: CAPTURED + payment.completed
    VOIDED    -> the cancellation overtook this event: payment.failed(order_cancelled)
    any other -> already decided; nothing new happens (a second request never charges
                 twice)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from common.events import catalogue as c
from common.events.models import PaymentCompleted, PaymentFailed, PaymentRequested
from common.step import StepContext
from functions.payments.wallet import Account, Payment, Wallet

FailReason = Literal["insufficient_funds", "no_account", "order_cancelled"]


def charge(ctx: StepContext[Wallet], req: PaymentRequested) -> None:
    wallet = ctx.store
    account = wallet.lock_account(req.customer_id)
    refusal = _refusal(account, req.amount)
    # The payments row is claimed before any money moves. It exists already when this
    # order's payment was decided before (a duplicate request, the API and the saga both)
    # or when a cancellation overtook this event and left its VOIDED tombstone: then
    # nothing moves, and what that row says is the answer.
    if wallet.claim_payment(req.order_id, req.customer_id, req.amount,
                            "FAILED" if refusal else "CAPTURED", refusal):
        if refusal is not None:
            _fail(ctx, req, refusal)
        else:
            assert account is not None
            _capture(ctx, req, account)
        return
    _already_decided(ctx, req, wallet.lock_payment(req.order_id))


def _refusal(account: Account | None, amount: Decimal) -> FailReason | None:
    if account is None:
        return "no_account"
    if account.balance < amount:
        return "insufficient_funds"
    return None


def _capture(ctx: StepContext[Wallet], req: PaymentRequested, account: Account) -> None:
    # Freeze and capture in one transaction: the money is held and taken under the same
    # account lock, and the ledger shows both movements.
    ctx.store.post(account, req.order_id, ("freeze", req.amount), ("capture", req.amount))
    ctx.emit(c.PAYMENT_COMPLETED, PaymentCompleted(
        order_id=req.order_id, customer_id=req.customer_id, amount=req.amount,
        shipping_address=req.shipping_address,
    ))
    ctx.labels["saga_step"] = "capture"


def _already_decided(ctx: StepContext[Wallet], req: PaymentRequested,
                     payment: Payment | None) -> None:
    status = payment.status if payment else "MISSING"
    ctx.labels["payment_status"] = status
    if status == "VOIDED":
        _fail(ctx, req, "order_cancelled")
    else:
        ctx.labels["saga_step"] = "charge.already_decided"


def _fail(ctx: StepContext[Wallet], req: PaymentRequested, reason: FailReason) -> None:
    ctx.emit(c.PAYMENT_FAILED, PaymentFailed(
        order_id=req.order_id, customer_id=req.customer_id, amount=req.amount, reason=reason,
    ))
    ctx.labels["saga_step"] = "charge.refused"
    ctx.labels["outcome"] = reason
