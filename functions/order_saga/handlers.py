"""Which event the order saga handles with what, on which store."""

from __future__ import annotations

from common.events import catalogue as c
from common.step import Handler
from functions.order_saga.orders import PgOrders
from functions.order_saga.react import (
    on_payment_completed,
    on_payment_failed,
    on_shipment_dispatched,
    on_shipment_failed,
    on_stock_rejected,
    on_stock_reserved,
)

HANDLERS: dict[str, Handler] = {
    c.STOCK_RESERVED: on_stock_reserved,
    c.STOCK_REJECTED: on_stock_rejected,
    c.PAYMENT_COMPLETED: on_payment_completed,
    c.PAYMENT_FAILED: on_payment_failed,
    c.SHIPMENT_DISPATCHED: on_shipment_dispatched,
    c.SHIPMENT_FAILED: on_shipment_failed,
}

STORE = PgOrders
