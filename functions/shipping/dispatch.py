"""Create the order's shipment on order.paid, or record that it must never ship.

One shipments row per order (primary key), so the decision is taken once whatever the
delivery order: the first writer wins and every later event finds the row.

A cancellation seen before order.paid leaves a tombstone: a FAILED row with reason
"order_cancelled" and no event. It lives in the shipments table rather than in a separate
marker table because the primary key then decides "ship" versus "never ship" atomically
(INSERT ... ON CONFLICT DO NOTHING on one key), the table's constraints already allow it
(FAILED rows carry no tracking number), and no other schema is needed. Readers tell it
from a carrier failure by its reason.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from common import tables as t
from common.events import catalogue as c
from common.events.models import OrderCancelled, OrderPaid, ShipmentDispatched, ShipmentFailed
from common.step import StepContext

UNDELIVERABLE = re.compile(r"\bundeliverable\b", re.IGNORECASE)
CANCELLED_REASON = "order_cancelled"
UNDELIVERABLE_REASON = "undeliverable_address"


_LOCK_SHIPMENT = (
    select(t.shipments.c.status, t.shipments.c.reason)
    .where(t.shipments.c.order_id == bindparam("order_id"))
    .with_for_update()
)
_CLAIM = (
    pg_insert(t.shipments)
    .values({c_: bindparam(c_) for c_ in
             ("order_id", "status", "tracking_number", "address", "reason")})
    .on_conflict_do_nothing(index_elements=[t.shipments.c.order_id])
    .returning(t.shipments.c.order_id)
)


def new_tracking_number() -> str:
    """A tracking number: TRK- and 12 uppercase hex digits (48 random bits). The column is
    unique: a collision fails the step with 500 and the KafkaSource's retry draws a new number."""
    return "TRK-" + secrets.token_hex(6).upper()


def dispatch(ctx: StepContext, paid: OrderPaid) -> None:
    # Claim first: on the usual path the insert is the only statement. A row that exists
    # (a duplicate, or a cancellation's tombstone) makes the claim fail, and says why.
    conn = ctx.conn
    if UNDELIVERABLE.search(paid.shipping_address):
        if _claim(conn, paid, "FAILED", None, UNDELIVERABLE_REASON):
            ctx.emit(c.SHIPMENT_FAILED, ShipmentFailed(
                order_id=paid.order_id, reason=UNDELIVERABLE_REASON))
            ctx.labels["saga_step"] = "ship.failed"
            return
    else:
        tracking = new_tracking_number()
        if _claim(conn, paid, "DISPATCHED", tracking, None):
            ctx.emit(c.SHIPMENT_DISPATCHED, ShipmentDispatched(
                order_id=paid.order_id, tracking_number=tracking))
            ctx.labels["saga_step"] = "ship"
            return
    ctx.labels["saga_step"] = "ship.already_decided"
    ctx.labels["shipment"] = _existing(conn, paid) or "unknown"


def never_ship(ctx: StepContext, cancelled: OrderCancelled) -> None:
    """order.cancelled: consumed only to leave the tombstone; a shipment that exists stays."""
    conn = ctx.conn
    if _claim(conn, cancelled, "FAILED", None, CANCELLED_REASON):
        ctx.labels["saga_step"] = "ship.tombstone"
        return
    existing = _existing(conn, cancelled)
    ctx.labels["saga_step"] = "ship.already_decided"
    ctx.labels["shipment"] = existing or "unknown"
    if existing == "DISPATCHED":
        # The goods left before the cancellation arrived; nothing here can call them back.
        ctx.labels["warning"] = "cancelled after dispatch"


def _existing(conn: Connection, event: OrderPaid | OrderCancelled) -> str | None:
    row = conn.execute(_LOCK_SHIPMENT, {"order_id": event.order_id}).first()
    if row is None:
        return None
    return f"{row.status}:{row.reason}" if row.reason else str(row.status)


def _claim(
    conn: Connection,
    event: OrderPaid | OrderCancelled,
    status: Literal["DISPATCHED", "FAILED"],
    tracking: str | None,
    reason: str | None,
) -> bool:
    address = event.shipping_address if isinstance(event, OrderPaid) else ""
    inserted = conn.execute(_CLAIM, {"order_id": event.order_id, "status": status,
                                     "tracking_number": tracking, "address": address,
                                     "reason": reason}).first()
    return inserted is not None
