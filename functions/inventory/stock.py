"""The inventory's store (Stock; PgStock on PostgreSQL). Lock order, everywhere in the
inventory: the order's reservations row first, then its stock rows in SKU order, so no two
steps can deadlock each other."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from common import tables as t
from common.outbox import Outbox

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
# The order's one reservations row: whoever inserts it first decides (reserve, or a
# cancellation's RELEASED tombstone).
_CLAIM = (
    pg_insert(t.reservations)
    .values(order_id=bindparam("order_id"), status=bindparam("status"))
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


class Stock(Protocol):
    """What the inventory's handlers read and write, in their transaction."""

    def claim_reservation(self, order_id: UUID, status: str) -> bool:
        """Insert the order's reservation in `status`; False when it exists already."""
        ...

    def available(self, skus: list[str]) -> dict[str, int]:
        """on_hand - reserved of each SKU that exists, its stock rows locked in SKU order."""
        ...

    def record_items(self, order_id: UUID, items: dict[str, int]) -> None: ...

    def lock_reservation(self, order_id: UUID) -> str | None:
        """The status of the order's reservation, row-locked; None when there is none yet."""
        ...

    def move_reservation(self, order_id: UUID, expected: str, status: str) -> bool:
        """Set the reservation to `status` if it is `expected` now (row-locking it); False,
        and nothing changed, when it is not."""
        ...

    def set_reservation_status(self, order_id: UUID, status: str) -> None: ...

    def reserved_items(self, order_id: UUID) -> dict[str, int]:
        """SKU -> quantity the order holds, with its stock rows locked in SKU order."""
        ...

    def move_stock(self, order_id: UUID, items: dict[str, int], *, kind: str,
                   on_hand_sign: int, reserved_sign: int) -> None:
        """Apply `sign * quantity` to on_hand and reserved of each SKU and record one stock
        movement per SKU, so sum(delta_on_hand) = on_hand and sum(delta_reserved) =
        reserved."""
        ...


class PgStock:
    def __init__(self, conn: Connection, _outbox: Outbox) -> None:
        self.conn = conn

    def claim_reservation(self, order_id: UUID, status: str) -> bool:
        return self.conn.execute(_CLAIM, {"order_id": order_id,
                                          "status": status}).first() is not None

    def available(self, skus: list[str]) -> dict[str, int]:
        rows = self.conn.execute(_LOCK_STOCK, {"skus": sorted(skus)}).all()
        return {r.sku: r.on_hand - r.reserved for r in rows}

    def record_items(self, order_id: UUID, items: dict[str, int]) -> None:
        self.conn.execute(_RECORD_ITEMS, [{"order_id": order_id, "sku": sku, "quantity": qty}
                                          for sku, qty in items.items()])

    def lock_reservation(self, order_id: UUID) -> str | None:
        status: str | None = self.conn.execute(
            _LOCK_RESERVATION, {"order_id": order_id}).scalar_one_or_none()
        return status

    def move_reservation(self, order_id: UUID, expected: str, status: str) -> bool:
        moved = self.conn.execute(_MOVE_RESERVATION, {
            "b_order_id": order_id, "b_expected": expected, "b_status": status}).first()
        return moved is not None

    def set_reservation_status(self, order_id: UUID, status: str) -> None:
        self.conn.execute(_SET_RESERVATION, {"b_order_id": order_id, "b_status": status})

    def reserved_items(self, order_id: UUID) -> dict[str, int]:
        rows = self.conn.execute(_LOCK_ITEMS, {"order_id": order_id}).all()
        return {r.sku: r.quantity for r in rows}

    def move_stock(self, order_id: UUID, items: dict[str, int], *, kind: str,
                   on_hand_sign: int, reserved_sign: int) -> None:
        if not items:
            return
        ordered = sorted(items.items())
        self.conn.execute(_MOVE_STOCK, [
            {"b_sku": sku, "b_on_hand": on_hand_sign * qty, "b_reserved": reserved_sign * qty}
            for sku, qty in ordered
        ])
        self.conn.execute(_RECORD_MOVEMENTS, [
            {"sku": sku, "kind": kind, "delta_on_hand": on_hand_sign * qty,
             "delta_reserved": reserved_sign * qty, "order_id": order_id}
            for sku, qty in ordered
        ])
