"""Reserve every line of an order or none of them.

The order's reservations row is claimed first (INSERT ... ON CONFLICT DO NOTHING): if a
row exists, the order was already decided, e.g. a cancellation overtook order.created and
left a RELEASED tombstone, and nothing is reserved. A cancellation racing this insert
waits for it and then compensates what it did. Stock rows are then locked in SKU order
(no deadlocks between orders), and the availability check and the update happen under
those locks: two orders for the last unit cannot both get it.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from common import tables as t
from common.events import catalogue as c
from common.events.models import MissingStock, OrderCreated, StockRejected, StockReserved
from common.step import StepContext
from functions.inventory.stock import move_stock, set_reservation_status

_CLAIM = (
    pg_insert(t.reservations)
    .values(order_id=bindparam("order_id"), status="RESERVED")
    .on_conflict_do_nothing()
    .returning(t.reservations.c.order_id)
)
_LOCK_STOCK = (
    select(t.stock.c.sku, t.stock.c.on_hand, t.stock.c.reserved)
    .where(t.stock.c.sku.in_(bindparam("skus", expanding=True)))
    .order_by(t.stock.c.sku)
    .with_for_update()
)
_RECORD_ITEMS = insert(t.reservation_items)


def reserve_stock(ctx: StepContext, order: OrderCreated) -> None:
    conn = ctx.conn
    claimed = conn.execute(_CLAIM, {"order_id": order.order_id}).first()
    if claimed is None:
        ctx.labels["saga_step"] = "reserve.already_decided"
        return

    wanted = Counter[str]()
    for line in order.items:
        wanted[line.sku] += line.quantity
    missing = _lock_and_check(conn, wanted)
    ctx.labels["saga_step"] = "reserve"
    if missing:
        set_reservation_status(conn, order.order_id, "REJECTED")
        ctx.emit(c.STOCK_REJECTED, StockRejected(
            order_id=order.order_id, reason="out_of_stock", missing=missing,
        ))
        ctx.labels["outcome"] = "out_of_stock"
        return

    conn.execute(_RECORD_ITEMS, [{"order_id": order.order_id, "sku": sku, "quantity": qty}
                                 for sku, qty in wanted.items()])
    move_stock(conn, order.order_id, dict(wanted), kind="reserve", on_hand_sign=0,
               reserved_sign=1)
    ctx.emit(c.STOCK_RESERVED, StockReserved(order_id=order.order_id, items=order.items,
                                             payment_mode=order.payment_mode))
    ctx.labels["outcome"] = "reserved"


def _lock_and_check(conn: Connection, wanted: Counter[str]) -> list[MissingStock]:
    rows = conn.execute(_LOCK_STOCK, {"skus": sorted(wanted)}).all()
    available = {r.sku: r.on_hand - r.reserved for r in rows}
    return [
        MissingStock(sku=sku, requested=qty, available=max(available.get(sku, 0), 0))
        for sku, qty in sorted(wanted.items())
        if available.get(sku, 0) < qty
    ]
