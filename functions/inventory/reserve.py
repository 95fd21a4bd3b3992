"""Reserve every line of an order or none of them.

The order's reservation is claimed first: if it exists, the order was already decided
(e.g. a cancellation overtook order.created and left a RELEASED tombstone) and nothing is
reserved; a cancellation racing the claim waits for it and then compensates. The stock
rows are then locked in SKU order, and the availability check and the update happen under
those locks: two orders for the last unit cannot both get it.
"""

from __future__ import annotations

from collections import Counter

from common.events import catalogue as c
from common.events.models import MissingStock, OrderCreated, StockRejected, StockReserved
from common.step import StepContext
from functions.inventory.stock import Stock


def reserve_stock(ctx: StepContext[Stock], order: OrderCreated) -> None:
    stock = ctx.store
    if not stock.claim_reservation(order.order_id, "RESERVED"):
        ctx.labels["saga_step"] = "reserve.already_decided"
        return

    wanted = Counter[str]()
    for line in order.items:
        wanted[line.sku] += line.quantity
    missing = missing_stock(stock.available(sorted(wanted)), wanted)
    ctx.labels["saga_step"] = "reserve"
    if missing:
        stock.set_reservation_status(order.order_id, "REJECTED")
        ctx.emit(c.STOCK_REJECTED, StockRejected(
            order_id=order.order_id, reason="out_of_stock", missing=missing,
        ))
        ctx.labels["outcome"] = "out_of_stock"
        return

    stock.record_items(order.order_id, dict(wanted))
    stock.move_stock(order.order_id, dict(wanted), kind="reserve", on_hand_sign=0,
                     reserved_sign=1)
    ctx.emit(c.STOCK_RESERVED, StockReserved(order_id=order.order_id, items=order.items,
                                             payment_mode=order.payment_mode))
    ctx.labels["outcome"] = "reserved"


def missing_stock(available: dict[str, int], wanted: Counter[str]) -> list[MissingStock]:
    return [
        MissingStock(sku=sku, requested=qty, available=max(available.get(sku, 0), 0))
        for sku, qty in sorted(wanted.items())
        if available.get(sku, 0) < qty
    ]
