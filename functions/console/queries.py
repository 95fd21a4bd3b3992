"""The console's read side over every order: the overview (counts by status, orders per
minute and completion times over the last hour, dead letters waiting, the size of the
tables that grow with traffic: common.table_stats) and Find (the
filter, newest first, paged by cursor). Both stay well under 100 ms on 100,000 orders on
the indexes of migration 0004 (`./taskw bench:console`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer, field_validator
from sqlalchemy import Connection, Row, func, select

from common import tables as t
from common.dead_letters import waiting
from common.order_state import STATUS_GROUP, Status, StatusGroup
from common.table_stats import table_stats
from functions.console import filters
from functions.console.filters import OrderFilter

Money = Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]
_o = t.orders
HOUR_MINUTES = 60
ROW_COLUMNS = (_o.c.id, _o.c.customer_id, _o.c.status, _o.c.reason, _o.c.payment_mode,
               _o.c.total, _o.c.payment_deadline, _o.c.created_at, _o.c.updated_at)


class OrderRow(BaseModel):
    id: str
    customer_id: str
    status: Status
    status_group: StatusGroup
    reason: str | None
    payment_mode: str
    total: Money
    payment_deadline: datetime | None
    created_at: datetime
    updated_at: datetime


def order_row(row: Row[Any]) -> OrderRow:
    status = Status(row.status)
    return OrderRow(id=str(row.id), customer_id=row.customer_id, status=status,
                    status_group=STATUS_GROUP[status], reason=row.reason,
                    payment_mode=row.payment_mode, total=row.total,
                    payment_deadline=row.payment_deadline, created_at=row.created_at,
                    updated_at=row.updated_at)


# --- Find ----------------------------------------------------------------------------------

class FindQuery(OrderFilter):
    limit: int = Field(default=50, ge=1, le=200, description="Page size, 1 to 200.")
    cursor: str | None = Field(default=None, max_length=200,
                               description="next_cursor of the previous page.")

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value:
            filters.decode_cursor(value)
        return value or None


class OrderPage(BaseModel):
    items: list[OrderRow]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null "
                                    "on the last one.")


def find(conn: Connection, query: FindQuery) -> OrderPage:
    where = filters.conditions(query) + filters.after_cursor(query.cursor)
    rows = conn.execute(select(*ROW_COLUMNS).where(*where)
                        .order_by(_o.c.created_at.desc(), _o.c.id.desc())
                        .limit(query.limit + 1)).all()
    page = rows[:query.limit]
    more = len(rows) > query.limit
    return OrderPage(items=[order_row(r) for r in page],
                     next_cursor=filters.encode_cursor(page[-1].created_at, page[-1].id)
                     if more else None)


def count(conn: Connection, query: OrderFilter, *, open_only: bool = False) -> int:
    where = filters.conditions(query) + ([filters.open_only()] if open_only else [])
    return int(conn.execute(select(func.count()).select_from(_o).where(*where)).scalar_one())


# --- Overview ------------------------------------------------------------------------------

class Minute(BaseModel):
    minute: datetime
    placed: int
    completed: int


class Completion(BaseModel):
    completed: int = Field(description="Orders that completed in the last hour.")
    p50_s: float | None = Field(description="Median seconds from placed to completed.")
    p95_s: float | None
    max_s: float | None


class GrowingTable(BaseModel):
    table: str
    rows: int
    rows_estimated: bool = Field(description="Estimated as the planner does, on a big table.")
    bytes: int = Field(description="On disk, with its indexes and TOAST.")
    oldest: datetime | None


class Overview(BaseModel):
    at: datetime
    orders: int
    by_status: dict[str, int]
    by_group: dict[str, int]
    cancelled_by_reason: dict[str, int]
    last_hour: list[Minute] = Field(description="Oldest first, one per minute.")
    completion: Completion
    dead_letters_waiting: int
    dead_letters_by_type: dict[str, int]
    tables: list[GrowingTable] = Field(
        description="The tables that grow with traffic, which the retention sweep bounds.")


def overview(conn: Connection) -> Overview:
    now: datetime = conn.execute(select(func.now())).scalar_one()
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=HOUR_MINUTES - 1)
    by_status: dict[str, int] = dict.fromkeys((s.value for s in Status), 0)
    by_group: dict[str, int] = dict.fromkeys(sorted(set(STATUS_GROUP.values())), 0)
    reasons: dict[str, int] = {}
    for row in conn.execute(select(_o.c.status, _o.c.reason, func.count().label("n"))
                            .group_by(_o.c.status, _o.c.reason)):
        by_status[row.status] += row.n
        by_group[STATUS_GROUP[Status(row.status)]] += row.n
        if row.reason:
            reasons[row.reason] = reasons.get(row.reason, 0) + row.n
    placed = _counts(conn, func.date_trunc("minute", _o.c.created_at),
                     _o.c.created_at >= first)
    completed_rows = _o.c.status == Status.COMPLETED.value, _o.c.updated_at >= first
    completed = _counts(conn, func.date_trunc("minute", _o.c.updated_at), *completed_rows)
    took = func.extract("epoch", _o.c.updated_at - _o.c.created_at)
    stats = conn.execute(select(
        func.count(), func.percentile_cont(0.5).within_group(took),
        func.percentile_cont(0.95).within_group(took), func.max(took),
    ).where(*completed_rows)).one()
    letters = _counts(conn, t.dead_letters.c.event_type, waiting())
    minutes = [first + timedelta(minutes=i) for i in range(HOUR_MINUTES)]
    return Overview(
        at=now, orders=sum(by_status.values()), by_status=by_status, by_group=by_group,
        cancelled_by_reason=dict(sorted(reasons.items())),
        last_hour=[Minute(minute=m, placed=placed.get(m, 0), completed=completed.get(m, 0))
                   for m in minutes],
        completion=Completion(completed=stats[0], p50_s=_seconds(stats[1]),
                              p95_s=_seconds(stats[2]), max_s=_seconds(stats[3])),
        dead_letters_waiting=sum(letters.values()), dead_letters_by_type=letters,
        tables=[GrowingTable(**stats.as_dict()) for stats in table_stats(conn)])


def _counts(conn: Connection, key: Any, *where: Any) -> dict[Any, int]:
    """count(*) per value of `key` among the rows `where` holds."""
    rows = conn.execute(select(key, func.count().label("n")).where(*where).group_by(key))
    return {row[0]: int(row.n) for row in rows}


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
