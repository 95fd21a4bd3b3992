"""Which event the shipping function handles with what."""

from __future__ import annotations

from common.events import catalogue as c
from common.step import Handler
from functions.shipping.dispatch import dispatch, never_ship

HANDLERS: dict[str, Handler] = {
    c.ORDER_PAID: dispatch,
    c.ORDER_CANCELLED: never_ship,
}
