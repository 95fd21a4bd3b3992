"""Which event the shipping function handles with what, on which store."""

from __future__ import annotations

from common.events import catalogue as c
from common.step import Handler
from functions.shipping.dispatch import PgShipments, dispatch, never_ship

HANDLERS: dict[str, Handler] = {
    c.ORDER_PAID: dispatch,
    c.ORDER_CANCELLED: never_ship,
}

STORE = PgShipments
