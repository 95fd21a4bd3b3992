"""`saga trace ORDER_ID`: one order's timeline, merged by time from
- orders.order_status_history: every status change, who made it, for which event;
- messaging.outbox: every event emitted for the order, by whom, and when it was published;
- messaging.dead_letters: events of the order that failed for good;
- the ECS logs in <state dir>/logs/*.ndjson (docs/observability.md): each function's
  handling of each event (outcome, duration), retries, cold starts nearby are left out.

The database is the truth about what happened; the logs add who handled what and how
long it took. Status changes are taken from the history (the logs repeat them). The API's
request line has no order id, so it is found by the order's trace id (the traceparent of
the events the order emitted).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, or_, pool, select

from common import tables as t
from tools.log_contract import flatten
from tools.ops.context import OpsContext, OpsError


@dataclass(frozen=True)
class Entry:
    at: str  # ISO 8601, UTC
    origin: str  # history, outbox, dead_letter or log
    function: str
    what: str
    event_type: str | None = None
    event_id: str | None = None
    outcome: str | None = None
    duration_ms: float | None = None
    detail: str | None = None


def trace(ctx: OpsContext, order_id: str) -> tuple[list[Entry], list[str]]:
    """The order's entries, oldest first, and notes on what could not be read."""
    try:
        uuid.UUID(order_id)
    except ValueError:
        raise OpsError(f"{order_id!r} is not an order id (a UUID, as POST /orders "
                       "answered)") from None
    notes: list[str] = []
    entries: list[Entry] = []
    trace_ids: set[str] = set()
    if ctx.settings.database_url is None:
        notes.append("no database (set DATABASE_URL or start `./taskw up`): logs only")
    else:
        entries += _from_database(ctx, order_id, trace_ids)
        if not entries:
            notes.append(f"the database knows no order {order_id}")
    if ctx.log_dir.is_dir():
        entries += _from_logs(ctx.log_dir, order_id, trace_ids)
    else:
        notes.append(f"no logs in {ctx.log_dir} (they are written by `./taskw up`)")
    entries.sort(key=lambda e: e.at)
    return entries, notes


def _from_database(ctx: OpsContext, order_id: str, trace_ids: set[str]) -> list[Entry]:
    history, outbox, dead = t.order_status_history, t.outbox, t.dead_letters
    engine = create_engine(ctx.settings.sqlalchemy_url(), poolclass=pool.NullPool)
    entries: list[Entry] = []
    try:
        with engine.connect() as conn:
            for row in conn.execute(select(history).where(history.c.order_id == order_id)
                                    .order_by(history.c.id)):
                change = f"{row.from_status or 'new'} -> {row.to_status}"
                entries.append(Entry(_iso(row.at), "history", row.actor, f"status {change}",
                                     event_id=row.event_id, detail=row.reason))
            for row in conn.execute(select(outbox).where(outbox.c.partition_key == order_id)):
                traceparent = str((row.attributes or {}).get("traceparent", ""))
                if traceparent.count("-") == 3:
                    trace_ids.add(traceparent.split("-")[1])
                published = (f"published after {_ms(row.created_at, row.published_at):.0f} ms"
                             if row.published_at else "NOT PUBLISHED (the relay will)")
                entries.append(Entry(_iso(row.created_at), "outbox", row.producer, "emitted",
                                     row.event_type, str(row.id), detail=published))
            key = dead.c.attributes["partitionkey"].astext
            for row in conn.execute(select(dead).where(or_(dead.c.subject == order_id,
                                                           key == order_id))):
                entries.append(Entry(_iso(row.created_at), "dead_letter", "dlq",
                                     f"dead letter {row.id}", row.event_type, row.event_id,
                                     "failure", detail=f"HTTP {row.error_code} at "
                                     f"{row.error_dest}: {(row.error_data or '')[:120]}"))
    finally:
        engine.dispose()
    return entries


def _from_logs(log_dir: Path, order_id: str, trace_ids: set[str]) -> Iterator[Entry]:
    needles = [order_id, *trace_ids]
    for line in _lines(sorted(log_dir.glob("*.ndjson"))):
        if not any(needle in line for needle in needles):
            continue  # cheap: most lines are about other orders
        try:
            doc = flatten(json.loads(line))
        except ValueError:
            continue
        action = str(doc.get("event.action") or "")
        mine = order_id in (doc.get("labels.order_id"), doc.get("cloudevents.subject"))
        by_trace = action == "http.request" and doc.get("trace.id") in trace_ids
        if not (mine or by_trace) or action in ("", "saga.order.status_changed"):
            continue
        duration = doc.get("event.duration")
        yield Entry(
            _normal(doc.get("@timestamp", "")), "log", str(doc.get("service.name", "?")), action,
            doc.get("cloudevents.type"), doc.get("cloudevents.id"), doc.get("event.outcome"),
            round(duration / 1e6, 1) if isinstance(duration, int | float) else None,
            _log_detail(doc, action))


def _log_detail(doc: dict[str, Any], action: str) -> str | None:
    if action == "http.request":
        return f"{doc.get('http.request.method')} {doc.get('url.path')} -> " \
               f"{doc.get('http.response.status_code')}"
    if doc.get("error.message"):
        return f"{doc.get('error.type')}: {doc.get('error.message')}"
    if action.startswith("knative."):
        return str(doc.get("message") or "")
    return doc.get("labels.emitted") and f"emitted {doc['labels.emitted']}"


def _lines(paths: Iterable[Path]) -> Iterator[str]:
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as lines:
            yield from lines


def _iso(moment: datetime) -> str:
    """One format for every origin, so entries sort by time as strings."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _normal(stamp: Any) -> str:
    try:
        return _iso(datetime.fromisoformat(str(stamp)))
    except ValueError:
        return str(stamp)


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


def render(order_id: str, entries: list[Entry]) -> str:
    lines = [f"order {order_id}: {len(entries)} entries",
             f"{'TIME':<13}{'FUNCTION':<15}{'WHAT':<34}{'EVENT':<22}{'OUTCOME':<9}"
             f"{'MS':>8}  DETAIL"]
    for e in entries:
        short = (e.event_type or "").removeprefix("shop.").removesuffix(".v1")
        when = _local_time(e.at)
        lines.append(f"{when:<13}{e.function[:14]:<15}{e.what[:33]:<34}{short[:21]:<22}"
                     f"{e.outcome or '':<9}{'' if e.duration_ms is None else e.duration_ms:>8}"
                     f"  {e.detail or ''}".rstrip())
    return "\n".join(lines)


def as_json(entries: list[Entry]) -> list[dict[str, Any]]:
    return [asdict(e) for e in entries]


def _local_time(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        return stamp[:12]
