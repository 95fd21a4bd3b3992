"""How orders look from outside (the JSON models) and the queries that build them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from pydantic import BaseModel, Field

from common.auth import Principal
from common.events.models import CancelReason, OrderLine, PaymentMode
from common.order_state import STATUS_GROUP, Order, Status, StatusGroup
from common.pg import Row, Tx
from functions.api import sql
from functions.api.schemas import (
    NEXT_CURSOR_DESCRIPTION,
    MoneyOut,
    decode_time_id_cursor,
    time_id_cursor,
)

# The keyset before every row: what the first page of a newest-first list starts from.
BEFORE_ALL = (datetime.max.replace(tzinfo=UTC), UUID(int=2**128 - 1))


class OrderItemOut(BaseModel):
    sku: str
    quantity: int
    unit_price: MoneyOut


class TimelineEntry(BaseModel):
    from_status: Status | None
    to_status: Status
    reason: CancelReason | None
    at: datetime
    actor: str


class OrderOut(BaseModel):
    id: UUID
    customer_id: str
    status: Status
    status_group: StatusGroup = Field(
        description="The coarse view: created, processing, completed or cancelled."
    )
    reason: CancelReason | None = Field(description="Why the order was cancelled, if it was.")
    payment_mode: PaymentMode
    items: list[OrderItemOut]
    total: MoneyOut
    shipping_address: str
    payment_deadline: datetime | None = Field(
        description="Confirm mode: POST /orders/{id}/pay before this time."
    )
    created_at: datetime
    updated_at: datetime


class OrderDetail(OrderOut):
    timeline: list[TimelineEntry] = Field(description="Every status change, oldest first.")


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = Field(description=NEXT_CURSOR_DESCRIPTION)


def may_see(principal: Principal, customer_id: str) -> bool:
    return principal.is_admin or principal.subject == customer_id


def created_order_out(order: Order, lines: Sequence[OrderLine]) -> OrderOut:
    """The answer for an order just created, from what was written (no read back): the
    same as fetch_order would give once it commits."""
    return OrderOut(
        id=order.id, customer_id=order.customer_id, status=order.status,
        status_group=STATUS_GROUP[order.status], reason=None, payment_mode=order.payment_mode,
        items=[OrderItemOut(sku=ln.sku, quantity=ln.quantity, unit_price=ln.unit_price)
               for ln in sorted(lines, key=lambda ln: ln.sku)],
        total=order.total, shipping_address=order.shipping_address, payment_deadline=None,
        created_at=order.created_at, updated_at=order.created_at,
    )


def fetch_order(tx: Tx, order_id: UUID) -> OrderOut | None:
    row = tx.one(sql.ORDER, {"order_id": order_id})
    return None if row is None else _build(tx, [row])[0]


def fetch_detail(tx: Tx, order_id: UUID) -> OrderDetail | None:
    order = fetch_order(tx, order_id)
    if order is None:
        return None
    timeline = [
        TimelineEntry(from_status=from_status, to_status=to_status, reason=reason, at=at,
                      actor=actor)
        for from_status, to_status, reason, at, actor
        in tx.all(sql.ORDER_TIMELINE, {"order_id": order_id})
    ]
    return OrderDetail(**order.model_dump(), timeline=timeline)


def list_orders(
    tx: Tx, customer_id: str, *, status: Status | None, limit: int, cursor: str | None
) -> OrderPage:
    """Newest first. Keyset pagination on (created_at, id), which the index
    ix_orders_customer_created serves, so a deep page costs what the first one does."""
    before_at, before_id = BEFORE_ALL if cursor is None else decode_time_id_cursor(cursor)
    rows = tx.all(sql.MY_ORDERS, {
        "customer_id": customer_id, "status": status, "before_at": before_at,
        "before_id": before_id, "limit": limit + 1})
    page, more = rows[:limit], len(rows) > limit
    next_cursor = time_id_cursor(page[-1][8], page[-1][0]) if more else None
    return OrderPage(items=_build(tx, page), next_cursor=next_cursor)


def _build(tx: Tx, rows: Sequence[Row]) -> list[OrderOut]:
    """OrderOut of rows in sql.ORDER's columns, with their items."""
    if not rows:
        return []
    items: dict[UUID, list[OrderItemOut]] = defaultdict(list)
    for order_id, sku, quantity, unit_price in tx.all(
            sql.ORDER_ITEMS, {"order_ids": [row[0] for row in rows]}):
        items[order_id].append(OrderItemOut(sku=sku, quantity=quantity, unit_price=unit_price))
    orders = []
    for (order_id, customer_id, status, reason, payment_mode, total, shipping_address,
         payment_deadline, created_at, updated_at) in rows:
        orders.append(OrderOut(
            id=order_id, customer_id=customer_id, status=Status(status),
            status_group=STATUS_GROUP[Status(status)], reason=reason,
            payment_mode=payment_mode, items=items[order_id], total=total,
            shipping_address=shipping_address, payment_deadline=payment_deadline,
            created_at=created_at, updated_at=updated_at))
    return orders
