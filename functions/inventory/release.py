"""Compensation on order.cancelled: give back what the order holds.

    no reservation yet  -> RELEASED tombstone: the cancellation overtook order.created, and
                           reserve_stock treats any existing row as decided, so the late
                           order.created reserves nothing
    RESERVED            -> release: reserved -= qty (movement "release")
    COMMITTED           -> return: commit lowered on_hand when the order was paid; the goods
                           never left (shipping failed, or the order was cancelled after
                           payment), so on_hand goes back up (movement "return")
    REJECTED / RELEASED -> nothing to give back
"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert

from common import tables as t
from common.events.models import OrderCancelled
from common.step import StepContext
from functions.inventory.stock import (
    lock_reservation,
    move_stock,
    reserved_items,
    set_reservation_status,
)


def release_stock(ctx: StepContext, cancelled: OrderCancelled) -> None:
    conn, order_id = ctx.conn, cancelled.order_id
    status = lock_reservation(conn, order_id)
    if status is None:
        # ON CONFLICT: a reserve_stock running right now may insert its row first; then we
        # wait for it to commit and compensate what it did instead.
        tombstone = conn.execute(
            pg_insert(t.reservations)
            .values(order_id=order_id, status="RELEASED")
            .on_conflict_do_nothing()
            .returning(t.reservations.c.order_id)
        ).first()
        if tombstone is not None:
            ctx.labels["saga_step"] = "release.tombstone"
            return
        status = lock_reservation(conn, order_id)

    if status == "RESERVED":
        items = reserved_items(conn, order_id)
        move_stock(conn, order_id, items, kind="release", on_hand_sign=0, reserved_sign=-1)
        set_reservation_status(conn, order_id, "RELEASED")
        ctx.action = "saga.compensation.released"
        ctx.labels["saga_step"] = "release"
    elif status == "COMMITTED":
        items = reserved_items(conn, order_id)
        move_stock(conn, order_id, items, kind="return", on_hand_sign=1, reserved_sign=0)
        set_reservation_status(conn, order_id, "RELEASED")
        ctx.action = "saga.compensation.returned"
        ctx.labels["saga_step"] = "return"
    else:
        ctx.labels["saga_step"] = "release.nothing_held"
        ctx.labels["reservation_status"] = str(status)
