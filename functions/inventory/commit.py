"""On order.paid: the reserved units are sold. on_hand and reserved both drop by the
quantity (movement "commit"); only a RESERVED reservation is committed, so a duplicate or
an order.paid that lost a race to a cancellation (RELEASED) changes nothing."""

from __future__ import annotations

from common.events.models import OrderPaid
from common.step import StepContext
from functions.inventory.stock import (
    lock_reservation,
    move_stock,
    reserved_items,
    set_reservation_status,
)


def commit_stock(ctx: StepContext, paid: OrderPaid) -> None:
    conn, order_id = ctx.conn, paid.order_id
    status = lock_reservation(conn, order_id)
    if status != "RESERVED":
        ctx.labels["saga_step"] = "commit.nothing_reserved"
        ctx.labels["reservation_status"] = str(status)
        return
    items = reserved_items(conn, order_id)
    move_stock(conn, order_id, items, kind="commit", on_hand_sign=-1, reserved_sign=-1)
    set_reservation_status(conn, order_id, "COMMITTED")
    ctx.labels["saga_step"] = "commit"
