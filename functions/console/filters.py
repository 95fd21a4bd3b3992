"""The filter of Find, which the page keeps in its URL and bulk operations act on: one
model for a query string and a JSON body, and the SQL conditions it stands for (the
indexes migration 0004 adds serve each: docs/benchmarks.md, "The console")."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, and_, exists, func, select, tuple_

from common import tables as t
from common.events.models import CancelReason, Sku
from common.order_ids import parse_order_id, prefix_range
from common.order_state import TERMINAL, Status

OPEN = "open"  # every status but COMPLETED and CANCELLED
# Text an operator types: no control characters (PostgreSQL text cannot hold NUL at all);
# a note may have tabs and line breaks.
LINE = r"^[^\x00-\x1f\x7f]*$"
NOTE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
OPEN_STATUSES = tuple(s for s in Status if s not in TERMINAL)
_o = t.orders


class OrderFilter(BaseModel):
    """Every field narrows the orders; none given: every order."""

    model_config = ConfigDict(extra="ignore")

    status: str | None = Field(default=None, max_length=120, description=(
        "A status, several comma-separated (CREATED,PAID), or `open`: every status but "
        "COMPLETED and CANCELLED."))
    reason: CancelReason | None = Field(default=None, description="Cancelled for this reason.")
    customer: str | None = Field(default=None, min_length=1, max_length=200, pattern=LINE,
                                 description="The customer's id (a token's subject).")
    sku: Sku | None = Field(default=None, description="Orders with a line of this SKU.")
    id: str | None = Field(default=None, max_length=36, description=(
        "The order's id, or a prefix of at least 6 hex digits."))
    since: AwareDatetime | None = Field(default=None, description="Placed at or after.")
    until: AwareDatetime | None = Field(default=None, description="Placed before.")
    older_than_s: Annotated[int, Field(ge=0, le=10 * 365 * 86400)] | None = Field(
        default=None, description="Placed more than this many seconds ago.")

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: str | None) -> str | None:
        if value:
            statuses(value)
        return value or None

    @field_validator("id")
    @classmethod
    def _order_id(cls, value: str | None) -> str | None:
        if value:
            parse_order_id(value)  # its ValueError names what to give
        return value or None

    def given(self) -> dict[str, Any]:
        """The fields set, as JSON: what the audit keeps of a bulk operation's filter."""
        return self.model_dump(mode="json", exclude_none=True,
                               include=set(OrderFilter.model_fields))


def statuses(text: str) -> list[Status]:
    found: list[Status] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part.lower() == OPEN:
            found += OPEN_STATUSES
        elif part.upper() in Status.__members__:
            found.append(Status(part.upper()))
        else:
            raise ValueError(f"{part!r} is no status: give {', '.join(Status)} or {OPEN}")
    return list(dict.fromkeys(found))


def conditions(f: OrderFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.status:
        where.append(_o.c.status.in_([s.value for s in statuses(f.status)]))
    if f.reason:
        # A reason implies CANCELLED (a check constraint): said here, the partial index
        # ix_orders_cancelled serves it.
        where += [_o.c.status == Status.CANCELLED.value, _o.c.reason == f.reason]
    if f.customer:
        where.append(_o.c.customer_id == f.customer)
    if f.sku:
        i = t.order_items
        where.append(exists(select(i.c.order_id).where(i.c.order_id == _o.c.id,
                                                        i.c.sku == f.sku)))
    if f.id:
        parsed = parse_order_id(f.id)
        if isinstance(parsed, uuid.UUID):
            where.append(_o.c.id == parsed)
        else:
            where.append(_o.c.id.between(*prefix_range(parsed)))
    if f.since:
        where.append(_o.c.created_at >= f.since)
    if f.until:
        where.append(_o.c.created_at < f.until)
    if f.older_than_s is not None:
        where.append(_o.c.created_at < func.now() - func.make_interval(
            0, 0, 0, 0, 0, 0, f.older_than_s))
    return where


def open_only() -> ColumnElement[bool]:
    return _o.c.status.not_in([s.value for s in TERMINAL])


def open_statuses(f: OrderFilter) -> list[str]:
    """The open statuses `f` matches (of all its conditions, the only ones an order leaves):
    what a bulk cancel checks again under the orders' locks. A reason means CANCELLED."""
    if f.reason:
        return []
    wanted = statuses(f.status) if f.status else OPEN_STATUSES
    return [s.value for s in wanted if s not in TERMINAL]


# --- cursors: opaque to the page, (created_at, id) of the last row shown -------------------

def encode_cursor(at: datetime, row_id: object) -> str:
    raw = json.dumps([at.isoformat(), str(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """ValueError for anything encode_cursor did not make."""
    try:
        at, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(at), uuid.UUID(row_id)
    except (ValueError, TypeError, AttributeError, binascii.Error):
        raise ValueError("not a cursor this console returned") from None


def after_cursor(cursor: str | None) -> list[ColumnElement[bool]]:
    """Newest first: the rows after the cursor's."""
    if cursor is None:
        return []
    return [tuple_(_o.c.created_at, _o.c.id) < decode_cursor(cursor)]


def all_of(where: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return and_(True, *where)
