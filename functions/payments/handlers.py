"""Which event the payments function handles with what, on which store."""

from __future__ import annotations

from common.events import catalogue as c
from common.step import Handler
from functions.payments.charge import charge
from functions.payments.refund import refund_or_void
from functions.payments.wallet import PgWallet

HANDLERS: dict[str, Handler] = {
    c.PAYMENT_REQUESTED: charge,
    c.ORDER_CANCELLED: refund_or_void,
}

STORE = PgWallet
