"""The audit trail: one console.audit row per operation an operator ran (who, when, what,
why, a bulk operation's filter and how many it changed; refusals too), written in the
operation's own transaction, and one saga.console.operation log line once it commits."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any, Literal

from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from common import tables as t
from common.logging import log_event
from common.pg import Tx
from common.tracing import TraceContext
from functions.console import sql
from functions.console.filters import LINE
from functions.console.order_view import AuditEntry, audit_entry

log = logging.getLogger("saga.console")
Outcome = Literal["done", "unchanged", "refused"]
_a = t.audit


def record(tx: Tx, *, actor: str, action: str, outcome: Outcome, trace: TraceContext,
           why: str = "", filter: dict[str, Any] | None = None, count: int = 0,
           detail: dict[str, Any] | None = None, order_ids: Iterable[uuid.UUID] = (),
           letter_ids: Iterable[int] = ()) -> int:
    """Insert the operation's audit row in its transaction; its log line once that commits."""
    orders, letters = list(order_ids), list(letter_ids)
    row = tx.one(sql.INSERT_AUDIT, {
        "actor": actor, "action": action, "outcome": outcome, "why": why,
        "filter": None if filter is None else Jsonb(filter), "count": count,
        "detail": Jsonb(detail or {}), "order_ids": orders, "letter_ids": letters,
        "trace_id": trace.trace_id})
    assert row is not None  # INSERT ... RETURNING
    audit_id = int(row[0])
    fields = {"user.id": actor, "labels.operation": action, "labels.operation_outcome": outcome,
              "labels.audit_id": str(audit_id), "labels.count": str(count),
              "labels.order_id": str(orders[0]) if len(orders) == 1 else None,
              "trace.id": trace.trace_id, "span.id": trace.span_id}
    message = f"{actor}: {action} {outcome}" + (f" ({count})" if count else "") + (
        f": {why}" if why else "")

    tx.after_commit(lambda: log_event(
        log, message, action="saga.console.operation",
        outcome="failure" if outcome == "refused" else "success", fields=fields))
    return audit_id


class AuditQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=200)
    before: int | None = Field(default=None, ge=1, description=(
        "next_before of the previous page: entries older than this id."))
    actor: str | None = Field(default=None, max_length=200, pattern=LINE)
    action: str | None = Field(default=None, max_length=40, pattern=LINE)


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: int | None


def page(conn: Connection, query: AuditQuery) -> AuditPage:
    where = []
    if query.before is not None:
        where.append(_a.c.id < query.before)
    if query.actor:
        where.append(_a.c.actor == query.actor)
    if query.action:
        where.append(_a.c.action == query.action)
    rows = conn.execute(select(_a).where(*where).order_by(_a.c.id.desc())
                        .limit(query.limit + 1)).all()
    shown = rows[:query.limit]
    return AuditPage(items=[audit_entry(r) for r in shown],
                     next_before=shown[-1].id if len(rows) > query.limit else None)
