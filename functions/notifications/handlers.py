"""Which event the notifications function handles with what."""

from __future__ import annotations

from common.events import catalogue as c
from common.step import Handler
from functions.notifications.write import (
    on_order_cancelled,
    on_order_completed,
    on_payment_refunded,
)

HANDLERS: dict[str, Handler] = {
    c.ORDER_COMPLETED: on_order_completed,
    c.ORDER_CANCELLED: on_order_cancelled,
    c.PAYMENT_REFUNDED: on_payment_refunded,
}
