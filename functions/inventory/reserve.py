"""Reserve every line of an order or none of them.

Stock rows are locked in SKU order, so two orders touching the same SKUs cannot deadlock,
and the availability check and the update happen under the same locks: two orders for
the last unit cannot both get it.
"""

from __future__ import annotations

from collections import Counter
from uuid import UUID

from sqlalchemy import Connection, bindparam, insert, select, update

from common import tables as t
from common.events import catalogue as c
from common.events.models import MissingStock, OrderCreated, StockRejected, StockReserved
from common.step import StepContext


def reserve_stock(ctx: StepContext, order: OrderCreated) -> None:
    conn = ctx.conn
    decided = conn.execute(
        select(t.reservations.c.status)
        .where(t.reservations.c.order_id == order.order_id)
        .with_for_update()
    ).scalar_one_or_none()
    if decided is not None:
        # Already decided (e.g. a cancellation overtook this order): nothing to reserve.
        ctx.labels["saga_step"] = "reserve.already_decided"
        return

    wanted = Counter[str]()
    for line in order.items:
        wanted[line.sku] += line.quantity
    missing = _lock_and_check(conn, wanted)
    ctx.labels["saga_step"] = "reserve"
    if missing:
        _record_decision(conn, order.order_id, "REJECTED")
        ctx.emit(c.STOCK_REJECTED, StockRejected(
            order_id=order.order_id, reason="out_of_stock", missing=missing,
        ))
        ctx.labels["outcome"] = "out_of_stock"
        return

    conn.execute(
        update(t.stock)
        .where(t.stock.c.sku == bindparam("b_sku"))
        .values(reserved=t.stock.c.reserved + bindparam("b_qty"), version=t.stock.c.version + 1),
        [{"b_sku": sku, "b_qty": qty} for sku, qty in sorted(wanted.items())],
    )
    _record_decision(conn, order.order_id, "RESERVED")
    conn.execute(
        insert(t.reservation_items),
        [{"order_id": order.order_id, "sku": sku, "quantity": qty} for sku, qty in wanted.items()],
    )
    conn.execute(
        insert(t.stock_movements),
        [
            {"sku": sku, "kind": "reserve", "delta_on_hand": 0, "delta_reserved": qty,
             "order_id": order.order_id}
            for sku, qty in wanted.items()
        ],
    )
    ctx.emit(c.STOCK_RESERVED, StockReserved(order_id=order.order_id, items=order.items))
    ctx.labels["outcome"] = "reserved"


def _lock_and_check(conn: Connection, wanted: Counter[str]) -> list[MissingStock]:
    rows = conn.execute(
        select(t.stock.c.sku, t.stock.c.on_hand, t.stock.c.reserved)
        .where(t.stock.c.sku.in_(sorted(wanted)))
        .order_by(t.stock.c.sku)
        .with_for_update()
    ).all()
    available = {r.sku: r.on_hand - r.reserved for r in rows}
    return [
        MissingStock(sku=sku, requested=qty, available=max(available.get(sku, 0), 0))
        for sku, qty in sorted(wanted.items())
        if available.get(sku, 0) < qty
    ]


def _record_decision(conn: Connection, order_id: UUID, status: str) -> None:
    conn.execute(insert(t.reservations).values(order_id=order_id, status=status))
