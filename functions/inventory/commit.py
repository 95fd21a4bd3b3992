"""On order.paid: the reserved units are sold. on_hand and reserved both drop by the
quantity (movement "commit"); only a RESERVED reservation is committed, so a duplicate or
an order.paid that lost a race to a cancellation (RELEASED) changes nothing."""

from __future__ import annotations

from common.events.models import OrderPaid
from common.step import StepContext
from functions.inventory.stock import Stock


def commit_stock(ctx: StepContext[Stock], paid: OrderPaid) -> None:
    stock, order_id = ctx.store, paid.order_id
    # RESERVED -> COMMITTED first: it locks the reservation (the inventory's lock order:
    # reservation, then stock rows) and decides in one statement.
    if not stock.move_reservation(order_id, "RESERVED", "COMMITTED"):
        ctx.labels["saga_step"] = "commit.nothing_reserved"
        ctx.labels["reservation_status"] = str(stock.lock_reservation(order_id))
        return
    items = stock.reserved_items(order_id)
    stock.move_stock(order_id, items, kind="commit", on_hand_sign=-1, reserved_sign=-1)
    ctx.labels["saga_step"] = "commit"
