"""/notifications: the customer's inbox, written by the notifications function."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import Connection, select, tuple_

from common import tables as t
from functions.api.route_specs import Call, RouteGroup
from functions.api.schemas import (
    NEXT_CURSOR_DESCRIPTION,
    PageQuery,
    decode_time_id_cursor,
    time_id_cursor,
)
from functions.api.tx import transact

ROUTES = RouteGroup("notifications")


class NotificationOut(BaseModel):
    id: UUID
    order_id: UUID | None
    kind: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None = Field(description=NEXT_CURSOR_DESCRIPTION)


@ROUTES.route(
    "GET", "/notifications", summary="My notifications, newest first", auth="customer",
    query=PageQuery, response=NotificationPage, errors=(422,),
)
def list_notifications(call: Call) -> NotificationPage:
    q = call.query(PageQuery)
    n = t.notifications

    def work(conn: Connection) -> NotificationPage:
        query = select(n.c.id, n.c.order_id, n.c.kind, n.c.title, n.c.body, n.c.created_at,
                       n.c.read_at).where(n.c.customer_id == call.user.subject)
        if q.cursor is not None:
            query = query.where(
                tuple_(n.c.created_at, n.c.id) < decode_time_id_cursor(q.cursor))
        rows = conn.execute(
            query.order_by(n.c.created_at.desc(), n.c.id.desc()).limit(q.limit + 1)
        ).all()
        items = [NotificationOut.model_validate(r._asdict()) for r in rows[: q.limit]]
        last = items[-1] if len(rows) > q.limit else None
        return NotificationPage(
            items=items,
            next_cursor=time_id_cursor(last.created_at, last.id) if last else None,
        )

    return transact(call, work)
