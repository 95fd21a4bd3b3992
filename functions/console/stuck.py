"""Stuck orders, each with why: open longer than SAGA_STUCK_AFTER_S (or the `older than`
the operator gives); idle in its state past that state's window; or with a dead letter
waiting. Open orders are read through the partial index of open orders, letters through
the waiting ones, so the cost follows what is stuck, not how many orders there are."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, and_, func, or_, select

from common import tables as t
from common.dead_letters import order_key, waiting
from common.order_state import Status
from functions.console.filters import open_only
from functions.console.queries import ROW_COLUMNS, OrderRow, order_row

LIMIT = 200
# A step takes well under a second (docs/benchmarks.md); a state it should have left for a
# minute means its event is retried, lagging behind, or lost.
STEP_WINDOW_S = 60
STEP_STATES = (Status.CREATED, Status.PAYMENT_PROCESSING, Status.PAID)
# The timeouts sweep runs every minute: a closed payment window it has not acted on for
# longer than that is a sweep that does not run.
SWEEP_GRACE_S = 90
_o, _dl = t.orders, t.dead_letters


class StuckQuery(BaseModel):
    older_than_s: int | None = Field(default=None, ge=0, le=10 * 365 * 86400, description=(
        "Open orders placed longer ago than this are stuck; default SAGA_STUCK_AFTER_S."))


class StuckOrder(BaseModel):
    order: OrderRow
    why: list[str]


class StuckPage(BaseModel):
    older_than_s: int
    items: list[StuckOrder] = Field(description=f"Oldest first, at most {LIMIT}.")
    more: bool = Field(description="More orders are stuck than are listed.")


def stuck(conn: Connection, older_than_s: int, functions: dict[str, str]) -> StuckPage:
    """`functions`: how a dead letter's error destination maps to a function's name."""
    now: datetime = conn.execute(select(func.now())).scalar_one()
    step = timedelta(seconds=STEP_WINDOW_S)
    rows = {row.id: row for row in conn.execute(select(*ROW_COLUMNS).where(open_only(), or_(
        _o.c.created_at < now - timedelta(seconds=older_than_s),
        and_(_o.c.status == Status.AWAITING_PAYMENT.value,
             _o.c.payment_deadline < now - timedelta(seconds=SWEEP_GRACE_S)),
        and_(_o.c.status.in_([s.value for s in STEP_STATES]), _o.c.updated_at < now - step),
    )).order_by(_o.c.created_at).limit(LIMIT + 1))}
    more = len(rows) > LIMIT
    key = order_key()
    letters: dict[uuid.UUID, list[str]] = {}
    for letter in conn.execute(select(_dl.c.id, _dl.c.event_type, _dl.c.error_dest,
                                      _dl.c.error_code, key.label("key"))
                               .where(waiting()).order_by(_dl.c.id).limit(LIMIT + 1)):
        order_id = _uuid(letter.key)
        if order_id is not None:
            where = function_of(letter.error_dest, functions) or "?"
            letters.setdefault(order_id, []).append(
                f"dead letter {letter.id} waiting: {letter.event_type} failed at {where} "
                f"(HTTP {letter.error_code or '?'})")
    missing = [order_id for order_id in letters if order_id not in rows]
    if missing:
        rows |= {row.id: row for row in conn.execute(
            select(*ROW_COLUMNS).where(_o.c.id.in_(missing[:LIMIT])))}
    items = [StuckOrder(order=order_row(row), why=_why(row, now, older_than_s)
                        + letters.get(row.id, []))
             for row in sorted(rows.values(), key=lambda r: r.created_at)][:LIMIT]
    return StuckPage(older_than_s=older_than_s, items=items,
                     more=more or len(rows) > LIMIT)


def _why(row: Any, now: datetime, older_than_s: int) -> list[str]:
    why: list[str] = []
    status = Status(row.status)
    if status in (Status.COMPLETED, Status.CANCELLED):
        return why
    age = (now - row.created_at).total_seconds()
    if age > older_than_s:
        why.append(f"open for {human(age)}, more than {human(older_than_s)}")
    idle = (now - row.updated_at).total_seconds()
    if status in STEP_STATES and idle > STEP_WINDOW_S:
        why.append(f"{status} for {human(idle)}: its next step takes under a second, so its "
                   "event is being retried, lagging behind, or lost")
    if (status == Status.AWAITING_PAYMENT and row.payment_deadline is not None
            and (now - row.payment_deadline).total_seconds() > SWEEP_GRACE_S):
        closed = (now - row.payment_deadline).total_seconds()
        why.append(f"its payment window closed {human(closed)} ago and the timeouts sweep "
                   "has not cancelled it")
    return why


def function_of(destination: str | None, functions: dict[str, str]) -> str | None:
    """The function a knativeerrordest URL names: by host:port locally (`functions`), by the
    Service's host name (http://inventory.order-saga.svc.cluster.local) on a cluster."""
    if not destination:
        return None
    host = destination.split("://", 1)[-1].split("/", 1)[0]
    if host in functions:
        return functions[host]
    name = host.split(":", 1)[0]
    return name.split(".")[0] if not name[:1].isdigit() and name != "localhost" else host


def human(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(text))
    except ValueError:
        return None
