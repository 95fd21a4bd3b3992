"""Row-level helpers shared by the inventory's steps.

Lock order, everywhere in the inventory: the order's reservations row first, then its stock
rows in SKU order. Every step follows it, so no two steps can deadlock each other.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Connection, bindparam, func, insert, select, update

from common import tables as t


def lock_reservation(conn: Connection, order_id: UUID) -> str | None:
    """The status of the order's reservation, row-locked; None when there is none yet."""
    return conn.execute(
        select(t.reservations.c.status)
        .where(t.reservations.c.order_id == order_id)
        .with_for_update()
    ).scalar_one_or_none()


def reserved_items(conn: Connection, order_id: UUID) -> dict[str, int]:
    """SKU -> quantity the order holds, with its stock rows locked in SKU order."""
    rows = conn.execute(
        select(t.reservation_items.c.sku, t.reservation_items.c.quantity)
        .where(t.reservation_items.c.order_id == order_id)
        .order_by(t.reservation_items.c.sku)
    ).all()
    items = {r.sku: r.quantity for r in rows}
    if items:
        conn.execute(
            select(t.stock.c.sku)
            .where(t.stock.c.sku.in_(sorted(items)))
            .order_by(t.stock.c.sku)
            .with_for_update()
        ).all()
    return items


def move_stock(
    conn: Connection,
    order_id: UUID,
    items: dict[str, int],
    *,
    kind: str,
    on_hand_sign: int,
    reserved_sign: int,
) -> None:
    """Apply `sign * quantity` to on_hand and reserved of each SKU and record one stock
    movement per SKU, so sum(delta_on_hand) = on_hand and sum(delta_reserved) = reserved."""
    if not items:
        return
    ordered = sorted(items.items())
    conn.execute(
        update(t.stock)
        .where(t.stock.c.sku == bindparam("b_sku"))
        .values(
            on_hand=t.stock.c.on_hand + bindparam("b_on_hand"),
            reserved=t.stock.c.reserved + bindparam("b_reserved"),
            version=t.stock.c.version + 1,
        ),
        [
            {"b_sku": sku, "b_on_hand": on_hand_sign * qty, "b_reserved": reserved_sign * qty}
            for sku, qty in ordered
        ],
    )
    conn.execute(
        insert(t.stock_movements),
        [
            {"sku": sku, "kind": kind, "delta_on_hand": on_hand_sign * qty,
             "delta_reserved": reserved_sign * qty, "order_id": order_id}
            for sku, qty in ordered
        ],
    )


def set_reservation_status(conn: Connection, order_id: UUID, status: str) -> None:
    conn.execute(
        update(t.reservations)
        .where(t.reservations.c.order_id == order_id)
        .values(status=status, updated_at=func.now())
    )
