"""How orders look from outside (the JSON models) and the queries that build them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Row, select, tuple_

from common import tables as t
from common.auth import Principal
from common.events.models import CancelReason, OrderLine, PaymentMode
from common.order_state import STATUS_GROUP, Order, Status, StatusGroup
from functions.api.schemas import (
    NEXT_CURSOR_DESCRIPTION,
    MoneyOut,
    decode_time_id_cursor,
    time_id_cursor,
)


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


def fetch_order(conn: Connection, order_id: UUID) -> OrderOut | None:
    row = conn.execute(select(t.orders).where(t.orders.c.id == order_id)).first()
    return None if row is None else _build(conn, [row])[0]


def fetch_detail(conn: Connection, order_id: UUID) -> OrderDetail | None:
    order = fetch_order(conn, order_id)
    if order is None:
        return None
    h = t.order_status_history
    history = conn.execute(
        select(h.c.from_status, h.c.to_status, h.c.reason, h.c.at, h.c.actor)
        .where(h.c.order_id == order_id)
        .order_by(h.c.id)
    ).all()
    timeline = [TimelineEntry.model_validate(r._asdict()) for r in history]
    return OrderDetail(**order.model_dump(), timeline=timeline)


def list_orders(
    conn: Connection, customer_id: str, *, status: Status | None, limit: int, cursor: str | None
) -> OrderPage:
    """Newest first. Keyset pagination on (created_at, id), which the index
    ix_orders_customer_created serves, so a deep page costs what the first one does."""
    o = t.orders
    query = select(o).where(o.c.customer_id == customer_id)
    if status is not None:
        query = query.where(o.c.status == status)
    if cursor is not None:
        query = query.where(tuple_(o.c.created_at, o.c.id) < decode_time_id_cursor(cursor))
    rows = conn.execute(
        query.order_by(o.c.created_at.desc(), o.c.id.desc()).limit(limit + 1)
    ).all()
    page, more = rows[:limit], len(rows) > limit
    next_cursor = time_id_cursor(page[-1].created_at, page[-1].id) if more else None
    return OrderPage(items=_build(conn, page), next_cursor=next_cursor)


def _build(conn: Connection, rows: Sequence[Row[Any]]) -> list[OrderOut]:
    if not rows:
        return []
    i = t.order_items
    items: dict[UUID, list[OrderItemOut]] = defaultdict(list)
    for item in conn.execute(
        select(i.c.order_id, i.c.sku, i.c.quantity, i.c.unit_price)
        .where(i.c.order_id.in_([r.id for r in rows]))
        .order_by(i.c.order_id, i.c.sku)
    ):
        items[item.order_id].append(
            OrderItemOut(sku=item.sku, quantity=item.quantity, unit_price=item.unit_price)
        )
    return [
        OrderOut(
            id=r.id, customer_id=r.customer_id, status=Status(r.status),
            status_group=STATUS_GROUP[Status(r.status)], reason=r.reason,
            payment_mode=r.payment_mode, items=items[r.id], total=r.total,
            shipping_address=r.shipping_address, payment_deadline=r.payment_deadline,
            created_at=r.created_at, updated_at=r.updated_at,
        )
        for r in rows
    ]
