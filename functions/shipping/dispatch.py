"""Create the order's shipment on order.paid, or record that it must never ship.

One shipments row per order (primary key), so the decision is taken once whatever the
delivery order: the first writer wins and every later event finds the row. A cancellation
seen before order.paid leaves a tombstone, a FAILED row with reason "order_cancelled" and
no event, so that the one key decides "ship" versus "never ship" atomically; readers tell
it from a carrier failure by its reason. The store: Shipments (PgShipments).
"""

from __future__ import annotations

import re
import secrets
from typing import Literal, Protocol
from uuid import UUID

from common.events import catalogue as c
from common.events.models import OrderCancelled, OrderPaid, ShipmentDispatched, ShipmentFailed
from common.outbox import Outbox
from common.pg import Tx
from common.step import StepContext
from functions.shipping import sql

UNDELIVERABLE = re.compile(r"\bundeliverable\b", re.IGNORECASE)
CANCELLED_REASON = "order_cancelled"
UNDELIVERABLE_REASON = "undeliverable_address"


Status = Literal["DISPATCHED", "FAILED"]


class Shipments(Protocol):
    def claim(self, order_id: UUID, status: Status, tracking: str | None, address: str,
              reason: str | None) -> bool:
        """Insert the order's one shipments row; False when it exists already."""
        ...

    def existing(self, order_id: UUID) -> str | None:
        """The order's row as "STATUS" or "STATUS:reason" (locked); None if there is none."""
        ...


class PgShipments:
    def __init__(self, tx: Tx, _outbox: Outbox) -> None:
        self.tx = tx

    def claim(self, order_id: UUID, status: Status, tracking: str | None, address: str,
              reason: str | None) -> bool:
        return self.tx.one(sql.CLAIM_SHIPMENT, {
            "order_id": order_id, "status": status, "tracking_number": tracking,
            "address": address, "reason": reason}) is not None

    def existing(self, order_id: UUID) -> str | None:
        row = self.tx.one(sql.LOCK_SHIPMENT, {"order_id": order_id})
        if row is None:
            return None
        status, reason = row
        return f"{status}:{reason}" if reason else str(status)


def new_tracking_number() -> str:
    """A tracking number: TRK- and 12 uppercase hex digits (48 random bits). The column is
    unique: a collision fails the step with 500 and the KafkaSource's retry draws a new number."""
    return "TRK-" + secrets.token_hex(6).upper()


def dispatch(ctx: StepContext[Shipments], paid: OrderPaid) -> None:
    # Claim first: on the usual path the insert is the only statement. A row that exists
    # (a duplicate, or a cancellation's tombstone) makes the claim fail, and says why.
    shipments, address = ctx.store, paid.shipping_address
    if UNDELIVERABLE.search(address):
        if shipments.claim(paid.order_id, "FAILED", None, address, UNDELIVERABLE_REASON):
            ctx.emit(c.SHIPMENT_FAILED, ShipmentFailed(
                order_id=paid.order_id, reason=UNDELIVERABLE_REASON))
            ctx.labels["saga_step"] = "ship.failed"
            return
    else:
        tracking = new_tracking_number()
        if shipments.claim(paid.order_id, "DISPATCHED", tracking, address, None):
            ctx.emit(c.SHIPMENT_DISPATCHED, ShipmentDispatched(
                order_id=paid.order_id, tracking_number=tracking))
            ctx.labels["saga_step"] = "ship"
            return
    ctx.labels["saga_step"] = "ship.already_decided"
    ctx.labels["shipment"] = shipments.existing(paid.order_id) or "unknown"


def never_ship(ctx: StepContext[Shipments], cancelled: OrderCancelled) -> None:
    """order.cancelled: consumed only to leave the tombstone; a shipment that exists stays."""
    shipments = ctx.store
    if shipments.claim(cancelled.order_id, "FAILED", None, "", CANCELLED_REASON):
        ctx.labels["saga_step"] = "ship.tombstone"
        return
    existing = shipments.existing(cancelled.order_id)
    ctx.labels["saga_step"] = "ship.already_decided"
    ctx.labels["shipment"] = existing or "unknown"
    if existing == "DISPATCHED":
        # The goods left before the cancellation arrived; nothing here can call them back.
        ctx.labels["warning"] = "cancelled after dispatch"
