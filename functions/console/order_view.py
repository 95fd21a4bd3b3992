"""One order, whole: its timeline (every status change with who made it; every event it
emitted, by which function, published when, and handled by each consumer after how long
or dead-lettered there; the operators' operations), its effects (stock, wallet, shipment,
notifications), its traces and the Kibana Discover link on `labels.order_id`.

The facts are those `saga trace` prints from the database (history, outbox, dead
letters), plus the inbox, which says where each event was handled: the step durations of
the logs are Kibana's to show (docs/operations.md, "The console").
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel
from sqlalchemy import Connection, select

from common import tables as t
from common.dead_letters import order_key, state_of
from common.events.catalogue import CATALOGUE
from common.order_state import TERMINAL, Status
from common.tracing import parse_traceparent
from functions.console.queries import ROW_COLUMNS, Money, OrderRow, order_row
from functions.console.stuck import function_of

DATA_VIEW = "saga-logs"  # elk/kibana: the data view on logs-saga-*


class Line(BaseModel):
    sku: str
    quantity: int
    unit_price: Money | None = None


class Handling(BaseModel):
    function: str
    outcome: str  # handled, dead letter N, not yet
    at: datetime | None
    latency_ms: float | None


class EventEntry(BaseModel):
    id: str
    type: str
    producer: str
    emitted_at: datetime
    published_after_ms: float | None
    redrive: str | None
    handled: list[Handling]


class LetterEntry(BaseModel):
    id: int
    event_id: str
    type: str
    failed_at: str | None
    error_code: int | None
    error: str | None
    state: str
    created_at: datetime


class Movement(BaseModel):
    at: datetime
    kind: str
    sku: str
    delta_on_hand: int
    delta_reserved: int


class LedgerEntry(BaseModel):
    at: datetime
    kind: str
    amount: Money


class Effects(BaseModel):
    reservation: str | None
    reserved: list[Line]
    stock_movements: list[Movement]
    payment: str | None
    payment_amount: Money | None
    ledger: list[LedgerEntry]
    shipment: str | None
    tracking_number: str | None
    notifications: list[str]


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    outcome: str
    why: str
    count: int
    filter: dict[str, Any] | None
    detail: dict[str, Any]


class TimelineEntry(BaseModel):
    at: datetime
    function: str
    what: str
    outcome: str | None = None
    detail: str | None = None


class Kibana(BaseModel):
    query: str
    url: str | None


class OrderDetail(BaseModel):
    order: OrderRow
    items: list[Line]
    timeline: list[TimelineEntry]
    events: list[EventEntry]
    dead_letters: list[LetterEntry]
    effects: Effects
    audit: list[AuditEntry]
    traces: list[str]
    kibana: Kibana
    cancel_refused: str | None


def order_detail(conn: Connection, order_id: uuid.UUID, *, functions: dict[str, str],
                 kibana_url: str | None) -> OrderDetail | None:
    row = conn.execute(select(*ROW_COLUMNS, t.orders.c.traceparent)
                       .where(t.orders.c.id == order_id)).first()
    if row is None:
        return None
    key = str(order_id)
    i = t.order_items
    items = [Line(sku=r.sku, quantity=r.quantity, unit_price=r.unit_price) for r in conn.execute(
        select(i.c.sku, i.c.quantity, i.c.unit_price).where(i.c.order_id == order_id)
        .order_by(i.c.sku))]
    letters = _letters(conn, key, functions)
    events, traces = _events(conn, key, letters)
    audit = audit_of(conn, order_id)
    own = parse_traceparent(row.traceparent)
    trace_ids = list(dict.fromkeys([own.trace_id] if own else []) | dict.fromkeys(traces))
    status = Status(row.status)
    refused = None if status not in TERMINAL else (
        f"the order is {status}: the state machine allows no change from there")
    return OrderDetail(
        order=order_row(row), items=items,
        timeline=_timeline(conn, order_id, events, letters, audit), events=events,
        dead_letters=letters, effects=_effects(conn, order_id, row.customer_id),
        audit=audit, traces=trace_ids, kibana=kibana(kibana_url, key, row.created_at),
        cancel_refused=refused)


def _events(conn: Connection, key: str, letters: list[LetterEntry]
            ) -> tuple[list[EventEntry], list[str]]:
    o, inbox = t.outbox, t.inbox
    rows = conn.execute(select(o).where(o.c.partition_key == key)
                        .order_by(o.c.created_at)).all()
    ids = [str(r.attributes.get("id")) for r in rows]
    consumers = sorted({f for r in rows for f in _consumers(r.event_type)})
    handled = {(h.consumer, h.event_id): h.received_at for h in conn.execute(
        select(inbox.c.consumer, inbox.c.event_id, inbox.c.received_at)
        .where(inbox.c.consumer.in_(consumers), inbox.c.event_id.in_(ids)))} if ids else {}
    failed = {(letter.event_id, letter.failed_at): letter for letter in letters}
    events, traces = [], []
    for row, event_id in zip(rows, ids, strict=True):
        caused = parse_traceparent(str(row.attributes.get("traceparent", "")))
        if caused is not None:
            traces.append(caused.trace_id)
        handlings = []
        for consumer in _consumers(row.event_type):
            at = handled.get((consumer, event_id))
            letter = failed.get((event_id, consumer))
            outcome = ("handled" if at else f"dead letter {letter.id} ({letter.state})"
                       if letter else "not yet")
            handlings.append(Handling(function=consumer, outcome=outcome, at=at,
                                      latency_ms=_ms(row.created_at, at)))
        events.append(EventEntry(
            id=event_id, type=row.event_type, producer=row.producer,
            emitted_at=row.created_at, published_after_ms=_ms(row.created_at, row.published_at),
            redrive=row.attributes.get("sagaredrive"), handled=handlings))
    return events, traces


def _letters(conn: Connection, key: str, functions: dict[str, str]) -> list[LetterEntry]:
    dl = t.dead_letters
    return [LetterEntry(id=r.id, event_id=r.event_id, type=r.event_type,
                        failed_at=function_of(r.error_dest, functions),
                        error_code=r.error_code, error=(r.error_data or "")[:300] or None,
                        state=state_of(redriven=r.redriven_at is not None, resolved=r.resolved),
                        created_at=r.created_at)
            for r in conn.execute(select(dl).where(order_key() == key)
                                  .order_by(dl.c.id))]


def _effects(conn: Connection, order_id: uuid.UUID, customer_id: str) -> Effects:
    res, items, moves = t.reservations, t.reservation_items, t.stock_movements
    pay, ledger, ship, notes = t.payments, t.ledger, t.shipments, t.notifications
    reservation = conn.execute(select(res.c.status).where(res.c.order_id == order_id)).scalar()
    payment = conn.execute(select(pay.c.status, pay.c.amount)
                           .where(pay.c.order_id == order_id)).first()
    shipment = conn.execute(select(ship.c.status, ship.c.tracking_number, ship.c.reason)
                            .where(ship.c.order_id == order_id)).first()
    return Effects(
        reservation=reservation,
        reserved=[Line(sku=r.sku, quantity=r.quantity) for r in conn.execute(
            select(items.c.sku, items.c.quantity).where(items.c.order_id == order_id))],
        stock_movements=[Movement(at=r.at, kind=r.kind, sku=r.sku,
                                  delta_on_hand=r.delta_on_hand, delta_reserved=r.delta_reserved)
                         for r in conn.execute(select(moves).where(moves.c.order_id == order_id)
                                               .order_by(moves.c.id))],
        payment=payment.status if payment else None,
        payment_amount=payment.amount if payment else None,
        ledger=[LedgerEntry(at=r.created_at, kind=r.kind, amount=r.amount) for r in conn.execute(
            select(ledger).where(ledger.c.order_id == order_id).order_by(ledger.c.id))],
        shipment=(f"{shipment.status}" + (f" ({shipment.reason})" if shipment.reason else "")
                  if shipment else None),
        tracking_number=shipment.tracking_number if shipment else None,
        notifications=[r.title for r in conn.execute(
            select(notes.c.title).where(notes.c.customer_id == customer_id,
                                        notes.c.order_id == order_id)
            .order_by(notes.c.created_at))])


def audit_of(conn: Connection, order_id: uuid.UUID) -> list[AuditEntry]:
    a = t.audit
    return [audit_entry(r) for r in conn.execute(
        select(a).where(a.c.order_ids.contains([order_id])).order_by(a.c.id))]


def audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(id=row.id, at=row.at, actor=row.actor, action=row.action,
                      outcome=row.outcome, why=row.why, count=row.count, filter=row.filter,
                      detail=row.detail)


def _timeline(conn: Connection, order_id: uuid.UUID, events: list[EventEntry],
              letters: list[LetterEntry], audit: list[AuditEntry]) -> list[TimelineEntry]:
    h = t.order_status_history
    entries = [TimelineEntry(at=r.at, function=r.actor,
                             what=f"status {r.from_status or 'new'} -> {r.to_status}",
                             detail=r.reason or (f"for event {r.event_id}" if r.event_id else None))
               for r in conn.execute(select(h).where(h.c.order_id == order_id)
                                     .order_by(h.c.id))]
    for event in events:
        published = (f"published after {event.published_after_ms:.0f} ms"
                     if event.published_after_ms is not None else
                     "not marked published yet (the relay publishes what stays unmarked)")
        redrive = f", re-drive {event.redrive}" if event.redrive else ""
        entries.append(TimelineEntry(at=event.emitted_at, function=event.producer,
                                     what=f"emitted {_short(event.type)}",
                                     detail=f"{published}{redrive}"))
        entries += [TimelineEntry(at=handling.at, function=handling.function,
                                  what=f"handled {_short(event.type)}", outcome="success",
                                  detail=f"{handling.latency_ms:.0f} ms after it was emitted"
                                  if handling.latency_ms is not None else None)
                    for handling in event.handled if handling.at is not None]
    entries += [TimelineEntry(at=letter.created_at, function=letter.failed_at or "?",
                              what=f"dead letter {letter.id}: {_short(letter.type)}",
                              outcome="failure",
                              detail=f"HTTP {letter.error_code}; {letter.state}")
                for letter in letters]
    entries += [TimelineEntry(at=op.at, function=f"operator {op.actor}",
                              what=f"{op.action} ({op.outcome})", detail=op.why or None)
                for op in audit]
    return sorted(entries, key=lambda e: e.at)


def kibana(base_url: str | None, order_id: str, placed: datetime) -> Kibana:
    """The KQL query of the order's log lines, and a Discover link to it when Kibana's URL
    is known (SAGA_KIBANA_URL)."""
    query = f'labels.order_id : "{order_id}"'
    if not base_url:
        return Kibana(query=query, url=None)
    since = (placed - timedelta(minutes=5)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Rison, as Kibana keeps its state in the URL; the values hold no ' or ! to escape.
    state = (f"_g=(time:(from:'{since}',to:now))&_a=(index:'{DATA_VIEW}',"
             f"query:(language:kuery,query:'{query}'))")
    return Kibana(query=query, url=f"{base_url.rstrip('/')}/app/discover#/?"
                  + quote(state, safe="=&:(),'/-_.*!"))


def _consumers(event_type: str) -> list[str]:
    spec = CATALOGUE.get(event_type)
    return sorted(spec.consumers) if spec else []


def _ms(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else round((end - start).total_seconds() * 1000, 1)


def _short(event_type: str) -> str:
    return event_type.removeprefix("shop.").removesuffix(".v1")
