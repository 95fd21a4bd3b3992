"""Dead letters as the console shows them: a page of them by state and type, and one with
its error, attributes and data. The data is a customer's (addresses, amounts), so it is
shown masked: its shape and its order id, every other value replaced by what kind it is;
the whole of it only on request (operations.reveal), which the audit records."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from common import tables as t
from common.dead_letters import (
    ERROR_EXTENSIONS,
    failed_again_as,
    redrive_of,
    state_of,
    waiting,
)
from common.pg import tx_in
from functions.console.filters import LINE
from functions.console.order_view import AuditEntry, audit_entry
from functions.console.stuck import function_of

State = Literal["waiting", "redriven", "resolved", "all"]
SHOWN_AS_IS = frozenset({"order_id"})  # an identifier the operator needs, nobody's secret
_dl = t.dead_letters


class LetterQuery(BaseModel):
    state: State = Field(default="waiting", description="waiting (the default), redriven, "
                         "resolved or all.")
    type: str | None = Field(default=None, max_length=200, pattern=LINE,
                             description="Only this event type.")
    limit: int = Field(default=50, ge=1, le=200)
    before: int | None = Field(default=None, ge=1, description="next_before of the previous "
                               "page.")


class LetterSummary(BaseModel):
    id: int
    created_at: datetime
    event_id: str
    type: str
    order_id: str | None
    failed_at: str | None
    error_code: int | None
    state: str
    redrive_of: int | None
    redrive_count: int


class LetterPage(BaseModel):
    items: list[LetterSummary]
    next_before: int | None


class Letter(LetterSummary):
    attributes: dict[str, str]
    error: str | None
    data: Any = Field(description="Masked unless revealed (POST .../reveal).")
    masked: bool
    failed_again_as: list[int]
    audit: list[AuditEntry]


def state_clause(state: State) -> Any:
    if state == "waiting":
        return waiting()
    if state == "redriven":
        return _dl.c.redriven_at.is_not(None) & ~_dl.c.resolved
    if state == "resolved":
        return _dl.c.resolved
    return True


def page(conn: Connection, query: LetterQuery, functions: dict[str, str]) -> LetterPage:
    where = [state_clause(query.state)]
    if query.type:
        where.append(_dl.c.event_type == query.type)
    if query.before is not None:
        where.append(_dl.c.id < query.before)
    rows = conn.execute(select(_dl).where(*where).order_by(_dl.c.id.desc())
                        .limit(query.limit + 1)).all()
    shown = rows[:query.limit]
    return LetterPage(items=[summary(r, functions) for r in shown],
                      next_before=shown[-1].id if len(rows) > query.limit else None)


def summary(row: Any, functions: dict[str, str]) -> LetterSummary:
    attributes = row.attributes or {}
    return LetterSummary(
        id=row.id, created_at=row.created_at, event_id=row.event_id, type=row.event_type,
        order_id=attributes.get("partitionkey") or row.subject,
        failed_at=function_of(row.error_dest, functions), error_code=row.error_code,
        state=state_of(redriven=row.redriven_at is not None, resolved=row.resolved),
        redrive_of=redrive_of(attributes), redrive_count=row.redrive_count)


def letter(conn: Connection, letter_id: int, functions: dict[str, str], *,
           reveal: bool = False) -> Letter | None:
    row = conn.execute(select(_dl).where(_dl.c.id == letter_id)).first()
    if row is None:
        return None
    a = t.audit
    data = decode(row.data)
    return Letter(
        **summary(row, functions).model_dump(),
        attributes={k: str(v) for k, v in (row.attributes or {}).items()
                    if k not in ERROR_EXTENSIONS},
        error=row.error_data, data=data if reveal else mask(data), masked=not reveal,
        failed_again_as=failed_again_as(tx_in(conn), row.id),
        audit=[audit_entry(r) for r in conn.execute(
            select(a).where(a.c.letter_ids.contains([row.id])).order_by(a.c.id))])


def decode(data: bytes | None) -> Any:
    """The stored data: JSON when it is, else its text, else how many bytes it holds."""
    if data is None:
        return None
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(raw)} bytes, not text)"
    try:
        return json.loads(text)
    except ValueError:
        return text


def mask(value: Any, key: str | None = None) -> Any:
    """The same shape with each value replaced by its kind (order ids kept)."""
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if key in SHOWN_AS_IS or value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return f"*** ({len(value)} characters)"
    return f"*** ({type(value).__name__})"
