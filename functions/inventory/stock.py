"""Row-level helpers shared by the inventory's steps.

Lock order, everywhere in the inventory: the order's reservations row first, then its stock
rows in SKU order. Every step follows it, so no two steps can deadlock each other.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Connection, bindparam, func, insert, select, update

from common import tables as t

# Built once, executed with parameters (SQLAlchemy then only looks up the compiled form).
_LOCK_RESERVATION = (
    select(t.reservations.c.status)
    .where(t.reservations.c.order_id == bindparam("order_id"))
    .with_for_update()
)
# (Bound names differ from column names: SQLAlchemy reserves those in SET clauses.)
_SET_RESERVATION = (
    update(t.reservations)
    .where(t.reservations.c.order_id == bindparam("b_order_id"))
    .values(status=bindparam("b_status"), updated_at=func.now())
)
# The reservation changes only from the status it is expected in: a compare-and-set that
# also takes the reservation's row lock (the first lock of every inventory step).
_MOVE_RESERVATION = (
    _SET_RESERVATION.where(t.reservations.c.status == bindparam("b_expected"))
    .returning(t.reservations.c.order_id)
)
# The order's items with their stock rows locked, in SKU order, in one statement.
_LOCK_ITEMS = (
    select(t.reservation_items.c.sku, t.reservation_items.c.quantity)
    .join(t.stock, t.stock.c.sku == t.reservation_items.c.sku)
    .where(t.reservation_items.c.order_id == bindparam("order_id"))
    .order_by(t.stock.c.sku)
    .with_for_update(of=t.stock)
)
_MOVE_STOCK = (
    update(t.stock)
    .where(t.stock.c.sku == bindparam("b_sku"))
    .values(
        on_hand=t.stock.c.on_hand + bindparam("b_on_hand"),
        reserved=t.stock.c.reserved + bindparam("b_reserved"),
        version=t.stock.c.version + 1,
    )
)
_RECORD_MOVEMENTS = insert(t.stock_movements)


def lock_reservation(conn: Connection, order_id: UUID) -> str | None:
    """The status of the order's reservation, row-locked; None when there is none yet."""
    status: str | None = conn.execute(
        _LOCK_RESERVATION, {"order_id": order_id}).scalar_one_or_none()
    return status


def move_reservation(conn: Connection, order_id: UUID, expected: str, status: str) -> bool:
    """Set the reservation to `status` if it is `expected` now (row-locking it); False, and
    nothing changed, when it is not."""
    moved = conn.execute(_MOVE_RESERVATION, {"b_order_id": order_id, "b_expected": expected,
                                              "b_status": status}).first()
    return moved is not None


def reserved_items(conn: Connection, order_id: UUID) -> dict[str, int]:
    """SKU -> quantity the order holds, with its stock rows locked in SKU order."""
    rows = conn.execute(_LOCK_ITEMS, {"order_id": order_id}).all()
    return {r.sku: r.quantity for r in rows}


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
    conn.execute(_MOVE_STOCK, [
        {"b_sku": sku, "b_on_hand": on_hand_sign * qty, "b_reserved": reserved_sign * qty}
        for sku, qty in ordered
    ])
    conn.execute(_RECORD_MOVEMENTS, [
        {"sku": sku, "kind": kind, "delta_on_hand": on_hand_sign * qty,
         "delta_reserved": reserved_sign * qty, "order_id": order_id}
        for sku, qty in ordered
    ])


def set_reservation_status(conn: Connection, order_id: UUID, status: str) -> None:
    conn.execute(_SET_RESERVATION, {"b_order_id": order_id, "b_status": status})
