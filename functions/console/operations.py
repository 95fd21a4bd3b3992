"""What an operator changes, each through what the saga itself uses, never a direct edit of
an order: a cancel goes through the state machine (common/order_state.py) in the unit of
work, whose outbox carries order.cancelled to every compensation; a re-drive writes the
letter's event to the outbox in the transaction that marks it re-driven
(common/dead_letters.py), and is published after commit like any event.

Every operation says why, is written to the audit in its own transaction (refusals too),
and is idempotent: what is already done is answered `unchanged`; what the state machine or
a letter's state refuses is a 409 naming why. Bulk operations take the filter of Find (or
an event type), answer a dry run by default, and run only with the count typed back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, func, select

from common import tables as t
from common.dead_letters import (
    Letter,
    NotRedrivable,
    mark_redriven,
    redrive_event,
    waiting,
    why_not_waiting,
)
from common.events.models import CancelReason
from common.order_state import (
    Order,
    Status,
    can_transition,
    lock_order,
    read_order,
    transition,
)
from common.outbox import Outbox
from common.pg import Tx
from common.tracing import TraceContext
from functions.console import audit, filters, sql
from functions.console.filters import LINE, NOTE, OrderFilter
from functions.console.wiring import ConsoleResources, Problem, operate, read

REASON: CancelReason = "cancelled_by_operator"
BULK_LIMIT = 500  # orders or letters one bulk operation changes; narrow the filter for more
SAMPLE = 10
_dl = t.dead_letters


class Why(BaseModel):
    model_config = ConfigDict(extra="forbid")

    why: str = Field(min_length=3, max_length=500, pattern=NOTE, description=(
        "Why you do it, in your words: the audit keeps it."))


class Result(BaseModel):
    audit_id: int
    outcome: Literal["done", "unchanged", "refused"]
    message: str
    count: int
    order_ids: list[str]
    letter_ids: list[int]


class BulkCancelIn(OrderFilter, Why):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=True, description="Only count (the default).")
    confirm: str | None = Field(default=None, max_length=40, pattern=LINE, description=(
        "To run: the `confirm` text of the dry run, typed back (\"cancel 12\")."))


class BulkRedriveIn(Why):
    type: str = Field(min_length=1, max_length=200, pattern=LINE,
                      description="The letters' event type.")
    dry_run: bool = True
    confirm: str | None = Field(default=None, max_length=40, pattern=LINE)


class Bulk(BaseModel):
    dry_run: bool
    matching: int = Field(description="What the filter matches.")
    affected: int = Field(description="What the operation would change (dry run) or did.")
    sample: list[str] = Field(description=f"The first {SAMPLE} it would change.")
    confirm: str = Field(description="The text to type back to run it.")
    result: Result | None = None


class Who(BaseModel):
    """The operator and the request: who the audit names, the trace the events join."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    operator: str
    trace: TraceContext

    @property
    def actor(self) -> str:
        return f"admin:{self.operator}"


def _answer(result: Result) -> Result:
    if result.outcome == "refused":
        raise Problem(409, "conflict", result.message, audit_id=result.audit_id)
    return result


def _result(tx: Tx, who: Who, action: str, outcome: Any, message: str, *,
            why: str, order_ids: list[uuid.UUID] = [], letter_ids: list[int] = [],  # noqa: B006
            count: int = 0, filter: dict[str, Any] | None = None,
            detail: dict[str, Any] | None = None) -> Result:
    audit_id = audit.record(tx, actor=who.operator, action=action, outcome=outcome,
                            trace=who.trace, why=why, filter=filter, count=count,
                            detail={"message": message} | (detail or {}),
                            order_ids=order_ids, letter_ids=letter_ids)
    return Result(audit_id=audit_id, outcome=outcome, message=message, count=count,
                  order_ids=[str(i) for i in order_ids], letter_ids=letter_ids)


# --- orders ----------------------------------------------------------------------------------

def cancel(resources: ConsoleResources, who: Who, order_id: uuid.UUID, why: str) -> Result:
    def work(tx: Tx, outbox: Outbox) -> Result:
        order = lock_order(tx, order_id)
        if order is None:
            raise Problem(404, "not found", "no such order")
        outcome, message = _cancel_one(tx, outbox, who, order)
        return _result(tx, who, "order.cancel", outcome, message, why=why,
                       order_ids=[order_id], count=int(outcome == "done"))
    return _answer(operate(resources, who.trace, work))


def _cancel_one(tx: Tx, outbox: Outbox, who: Who, order: Order) -> tuple[str, str]:
    if order.status == Status.CANCELLED:
        return "unchanged", f"the order was cancelled already ({order.reason})"
    if not can_transition(order.status, Status.CANCELLED):
        return "refused", (f"the order is {order.status}: the state machine allows no cancel "
                           "from there")
    # order.cancelled makes inventory release the stock, payments refund or void, shipping
    # never ship it, and notifications tell the customer.
    transition(tx, outbox, order, Status.CANCELLED, actor=who.actor, reason=REASON)
    return "done", (f"cancelled from {order.status}: stock, money and shipment are "
                    "compensated as for any cancel")


def redrive_order(resources: ConsoleResources, who: Who, order_id: uuid.UUID, why: str) -> Result:
    def work(tx: Tx, outbox: Outbox) -> Result:
        if read_order(tx, order_id) is None:
            raise Problem(404, "not found", "no such order")
        rows = _letters(tx, sql.LOCK_WAITING_LETTERS_OF_ORDER, {"order_id": str(order_id)})
        if not rows:
            return _result(tx, who, "order.redrive", "unchanged",
                           "no dead letter of this order is waiting", why=why,
                           order_ids=[order_id])
        sent, skipped = _redrive(tx, outbox, rows)
        outcome = "done" if sent else "refused"
        return _result(tx, who, "order.redrive", outcome, _redrive_message(sent, skipped),
                       why=why, order_ids=[order_id], letter_ids=[r.id for r in rows],
                       count=len(sent), detail={"skipped": skipped})
    return _answer(operate(resources, who.trace, work))


def bulk_cancel(resources: ConsoleResources, who: Who, body: BulkCancelIn) -> Bulk:
    wanted = OrderFilter.model_validate(body.given())
    where = [*filters.conditions(wanted), filters.open_only()]
    o = t.orders

    def dry(conn: Connection) -> tuple[Bulk, list[uuid.UUID]]:
        matching = conn.execute(select(func.count()).select_from(o)
                                .where(*filters.conditions(wanted))).scalar_one()
        ids: Sequence[uuid.UUID] = conn.execute(
            select(o.c.id).where(*where).order_by(o.c.created_at).limit(BULK_LIMIT + 1)
        ).scalars().all()
        return Bulk(dry_run=True, matching=matching, affected=len(ids),
                    sample=[str(i) for i in ids[:SAMPLE]], confirm=f"cancel {len(ids)}"), list(ids)

    counted, found = read(resources, dry)
    if body.dry_run:
        return counted

    def work(tx: Tx, outbox: Outbox) -> Bulk:
        # What the filter found just now, locked if still in one of its open statuses (the
        # rest of a filter never changes for an order); an order the filter matches only
        # since is left for the next run.
        ids = found if len(found) > BULK_LIMIT else [row[0] for row in tx.all(
            sql.LOCK_ORDERS_IN, {"ids": found, "statuses": filters.open_statuses(wanted)})]
        refusal = _bulk_refusal(len(ids), body.confirm, "cancel", "orders")
        if refusal is not None:
            result = _result(tx, who, "orders.cancel", "refused", refusal, why=body.why,
                             filter=wanted.given())
            return counted.model_copy(update={"dry_run": False, "result": result})
        done = []
        for order_id in ids:
            order = lock_order(tx, order_id)
            assert order is not None  # locked above
            if _cancel_one(tx, outbox, who, order)[0] == "done":
                done.append(order_id)
        result = _result(tx, who, "orders.cancel", "done" if done else "unchanged",
                         f"cancelled {len(done)} orders", why=body.why, order_ids=done,
                         count=len(done), filter=wanted.given())
        return Bulk(dry_run=False, matching=counted.matching, affected=len(done),
                    sample=[str(i) for i in done[:SAMPLE]], confirm=f"cancel {len(ids)}",
                    result=result)

    bulk = operate(resources, who.trace, work)
    if bulk.result is not None:
        _answer(bulk.result)
    return bulk


def _bulk_refusal(count: int, confirm: str | None, verb: str, what: str) -> str | None:
    if count > BULK_LIMIT:
        return (f"more than {BULK_LIMIT} {what} match; one operation changes at most "
                f"{BULK_LIMIT}: narrow the filter")
    if count == 0:
        return f"no {what} match the filter any more: nothing to {verb}"
    expected = f"{verb} {count}"
    if (confirm or "").strip().lower() != expected:
        return (f"the filter matches {count} {what} now: type {expected!r} to confirm (you "
                f"typed {confirm!r})")
    return None


# --- dead letters ------------------------------------------------------------------------------

def _letters(tx: Tx, statement: str, params: dict[str, Any]) -> list[Letter]:
    return [Letter(*row) for row in tx.all(statement, params)]


def _locked_letter(tx: Tx, letter_id: int) -> Letter:
    rows = _letters(tx, sql.LOCK_LETTER, {"id": letter_id})
    if not rows:
        raise Problem(404, "not found", "no such dead letter")
    return rows[0]


def _order_of(row: Letter) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(str((row.attributes or {}).get("partitionkey")))]
    except ValueError:
        return []


def _redrive(tx: Tx, outbox: Outbox, rows: Sequence[Letter]
             ) -> tuple[list[int], list[dict[str, Any]]]:
    """Each letter's event into the outbox, and the letters marked re-driven, in the
    caller's transaction; the ones that cannot be re-driven so, with why."""
    sent, skipped = [], []
    for row in rows:
        try:
            outbox.add(redrive_event(row))
            sent.append(row.id)
        except NotRedrivable as exc:
            skipped.append({"id": row.id, "why": str(exc)})
    if sent:
        mark_redriven(tx, sent)
    return sent, skipped


def _redrive_message(sent: list[int], skipped: list[dict[str, Any]]) -> str:
    parts = [f"re-drove {', '.join(map(str, sent))}"] if sent else []
    parts += [item["why"] for item in skipped]
    return "; ".join(parts)


def redrive_letter(resources: ConsoleResources, who: Who, letter_id: int, why: str) -> Result:
    def work(tx: Tx, outbox: Outbox) -> Result:
        row = _locked_letter(tx, letter_id)
        refusal = why_not_waiting(tx, row)
        if refusal is not None:
            return _result(tx, who, "letter.redrive", "refused",
                           f"{refusal} (`saga dlq redrive {letter_id} --force` sends it anyway)",
                           why=why, letter_ids=[letter_id], order_ids=_order_of(row))
        sent, skipped = _redrive(tx, outbox, [row])
        return _result(tx, who, "letter.redrive", "done" if sent else "refused",
                       _redrive_message(sent, skipped), why=why, letter_ids=[letter_id],
                       order_ids=_order_of(row), count=len(sent))
    return _answer(operate(resources, who.trace, work))


def bulk_redrive(resources: ConsoleResources, who: Who, body: BulkRedriveIn) -> Bulk:
    where = [waiting(), _dl.c.event_type == body.type]

    def dry(conn: Connection) -> Bulk:
        ids: Sequence[int] = conn.execute(select(_dl.c.id).where(*where).order_by(_dl.c.id)
                           .limit(BULK_LIMIT + 1)).scalars().all()
        return Bulk(dry_run=True, matching=len(ids), affected=len(ids),
                    sample=[str(i) for i in ids[:SAMPLE]], confirm=f"redrive {len(ids)}")

    counted = read(resources, dry)
    if body.dry_run:
        return counted

    def work(tx: Tx, outbox: Outbox) -> Bulk:
        rows = _letters(tx, sql.LOCK_WAITING_LETTERS_OF_TYPE,
                        {"type": body.type, "limit": BULK_LIMIT + 1})
        refusal = _bulk_refusal(len(rows), body.confirm, "redrive", "waiting letters")
        if refusal is not None:
            result = _result(tx, who, "letters.redrive", "refused", refusal, why=body.why,
                             filter={"type": body.type})
            return counted.model_copy(update={"dry_run": False, "result": result})
        sent, skipped = _redrive(tx, outbox, rows)
        orders = list(dict.fromkeys(i for r in rows for i in _order_of(r)))
        result = _result(tx, who, "letters.redrive", "done" if sent else "unchanged",
                         _redrive_message(sent, skipped) or "nothing to re-drive",
                         why=body.why, letter_ids=[r.id for r in rows], order_ids=orders,
                         count=len(sent), filter={"type": body.type},
                         detail={"skipped": skipped})
        return Bulk(dry_run=False, matching=len(rows), affected=len(sent),
                    sample=[str(i) for i in sent[:SAMPLE]], confirm=f"redrive {len(rows)}",
                    result=result)

    bulk = operate(resources, who.trace, work)
    if bulk.result is not None:
        _answer(bulk.result)
    return bulk


def resolve(resources: ConsoleResources, who: Who, letter_id: int, why: str) -> Result:
    def work(tx: Tx, _outbox: Outbox) -> Result:
        row = _locked_letter(tx, letter_id)
        if row.resolved:
            return _result(tx, who, "letter.resolve", "unchanged",
                           "the letter was resolved already", why=why, letter_ids=[letter_id],
                           order_ids=_order_of(row))
        tx.run(sql.RESOLVE_LETTER, {"id": letter_id})
        return _result(tx, who, "letter.resolve", "done", "resolved: it is not re-driven "
                       "any more", why=why, letter_ids=[letter_id], order_ids=_order_of(row),
                       count=1)
    return _answer(operate(resources, who.trace, work))


def reveal(resources: ConsoleResources, who: Who, letter_id: int, why: str) -> None:
    """Record that the operator asks for a letter's whole data (the caller then reads it)."""
    def work(tx: Tx, _outbox: Outbox) -> Result:
        rows = _letters(tx, sql.READ_LETTER, {"id": letter_id})
        if not rows:
            raise Problem(404, "not found", "no such dead letter")
        return _result(tx, who, "letter.reveal", "done", "the data was shown unmasked",
                       why=why, letter_ids=[letter_id], order_ids=_order_of(rows[0]))
    operate(resources, who.trace, work)
