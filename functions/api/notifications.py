"""/notifications: the customer's inbox, written by the notifications function."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from common.pg import Tx
from functions.api import sql
from functions.api.order_views import BEFORE_ALL
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

    def work(tx: Tx) -> NotificationPage:
        before_at, before_id = (BEFORE_ALL if q.cursor is None
                                else decode_time_id_cursor(q.cursor))
        rows = tx.all(sql.MY_NOTIFICATIONS, {
            "customer_id": call.user.subject, "before_at": before_at, "before_id": before_id,
            "limit": q.limit + 1})
        items = [NotificationOut(id=notification_id, order_id=order_id, kind=kind, title=title,
                                 body=body, created_at=created_at, read_at=read_at)
                 for (notification_id, order_id, kind, title, body, created_at, read_at)
                 in rows[: q.limit]]
        last = items[-1] if len(rows) > q.limit else None
        return NotificationPage(
            items=items,
            next_cursor=time_id_cursor(last.created_at, last.id) if last else None,
        )

    return transact(call, work)
