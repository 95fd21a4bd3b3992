"""Compensation on order.cancelled: give back what the order holds.
    no reservation yet  -> RELEASED tombstone: a late order.created then reserves nothing
    RESERVED            -> release: reserved -= qty (movement "release")
    COMMITTED           -> return: the goods never left (shipping failed, or cancelled after
                           payment), so on_hand goes back up (movement "return")
    REJECTED / RELEASED -> nothing to give back
"""

from __future__ import annotations

from common.events.models import OrderCancelled
from common.step import StepContext
from functions.inventory.stock import Stock


def release_stock(ctx: StepContext[Stock], cancelled: OrderCancelled) -> None:
    stock, order_id = ctx.store, cancelled.order_id
    status = stock.lock_reservation(order_id)
    if status is None:
        # ON CONFLICT: a reserve_stock running right now may insert its row first; then we
        # wait for it to commit and compensate what it did instead.
        if stock.claim_reservation(order_id, "RELEASED"):
            ctx.labels["saga_step"] = "release.tombstone"
            return
        status = stock.lock_reservation(order_id)

    if status == "RESERVED":
        items = stock.reserved_items(order_id)
        stock.move_stock(order_id, items, kind="release", on_hand_sign=0, reserved_sign=-1)
        stock.set_reservation_status(order_id, "RELEASED")
        ctx.action = "saga.compensation.released"
        ctx.labels["saga_step"] = "release"
    elif status == "COMMITTED":
        items = stock.reserved_items(order_id)
        stock.move_stock(order_id, items, kind="return", on_hand_sign=1, reserved_sign=0)
        stock.set_reservation_status(order_id, "RELEASED")
        ctx.action = "saga.compensation.returned"
        ctx.labels["saga_step"] = "return"
    else:
        ctx.labels["saga_step"] = "release.nothing_held"
        ctx.labels["reservation_status"] = str(status)
