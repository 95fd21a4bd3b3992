"""`saga trace ORDER_ID` (or a unique prefix): one order's timeline, merged by time from its
status history, the events emitted for it (messaging.outbox), its dead letters, and the
ECS logs in <state dir>/logs/ (each function's handling of each event). The database is
the truth about what happened; the logs add who handled what, and how long it took. The
requests that acted on the order name it (labels.order_id), or are found by its trace
ids. An order is several traces (docs/observability.md, "One order, its traces"): its own
and one per later request that acted on it; every entry names its trace, the header lists
them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, or_, pool, select

from common import tables as t
from common.dead_letters import REDRIVE_EXTENSION
from common.tracing import parse_traceparent
from tools.log_contract import flatten
from tools.ops.context import OpsContext
from tools.ops.orders import resolve_order_id


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
    trace_id: str | None = None
    links_to: str | None = None  # a request's span link: the order's own trace


def trace(ctx: OpsContext, order_id: str) -> tuple[list[Entry], list[str]]:
    """The order's entries, oldest first, and notes on what could not be read. `order_id`
    is the UUID or a unique prefix (tools/ops/orders.py)."""
    order_id = resolve_order_id(ctx, order_id)
    notes: list[str] = []
    entries: list[Entry] = []
    trace_ids: set[str] = set()
    if ctx.settings.database_url is None:
        notes.append("no database (set DATABASE_URL or start `./taskw up`): logs only")
    else:
        ctx.require_database()
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
            own = parse_traceparent(conn.execute(select(t.orders.c.traceparent).where(
                t.orders.c.id == order_id)).scalar_one_or_none())
            for row in conn.execute(select(history).where(history.c.order_id == order_id)
                                    .order_by(history.c.id)):
                change = f"{row.from_status or 'new'} -> {row.to_status}"
                created_in = own.trace_id if own and row.from_status is None else None
                entries.append(Entry(_iso(row.at), "history", row.actor, f"status {change}",
                                     event_id=row.event_id, detail=row.reason,
                                     trace_id=created_in))
            for row in conn.execute(select(outbox).where(outbox.c.partition_key == order_id)):
                caused = parse_traceparent(str((row.attributes or {}).get("traceparent", "")))
                if caused is not None:
                    trace_ids.add(caused.trace_id)
                published = (f"published after {_ms(row.created_at, row.published_at):.0f} ms"
                             if row.published_at else "NOT PUBLISHED (the relay will)")
                # A re-drive is the letter's event again: its own row, the event's own id.
                redrive = (row.attributes or {}).get(REDRIVE_EXTENSION)
                entries.append(Entry(_iso(row.created_at), "outbox", row.producer,
                                     f"re-drove ({redrive})" if redrive else "emitted",
                                     row.event_type, str((row.attributes or {}).get("id", row.id)),
                                     detail=published,
                                     trace_id=caused.trace_id if caused else None))
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
        links = doc.get("span.links.trace.id")
        yield Entry(
            _normal(doc.get("@timestamp", "")), "log", str(doc.get("service.name", "?")), action,
            doc.get("cloudevents.type"), doc.get("cloudevents.id"), doc.get("event.outcome"),
            round(duration / 1e6, 1) if isinstance(duration, int | float) else None,
            _log_detail(doc, action), doc.get("trace.id"),
            str(links[0]) if isinstance(links, list) and links else None)


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


def traces(entries: list[Entry]) -> list[tuple[str, str]]:
    """(trace id, what began it) for each trace of the order, in the order they began: the
    order's own first, then one per request that acted on it later."""
    began: dict[str, str] = {}
    requested: set[str] = set()
    for e in entries:
        if e.trace_id is None:
            continue
        if e.what == "http.request" and e.trace_id not in requested:
            requested.add(e.trace_id)  # a request describes its trace best; keeps its place
            began[e.trace_id] = f"{e.detail}{_links(e)}"
        else:
            began.setdefault(e.trace_id, e.what)
    if began:
        own = next(iter(began))
        began[own] = f"the order's own trace: {began[own]}"
    return list(began.items())


def render(order_id: str, entries: list[Entry]) -> str:
    found = traces(entries)
    count = f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'}"
    lines = [f"order {order_id}: {count} in {len(found)} trace(s)"]
    lines += [f"  trace {_short(trace_id)}  {what}" for trace_id, what in found]
    # As wide as the longest WHAT ("status AWAITING_PAYMENT -> PAYMENT_PROCESSING"), bounded.
    what = min(max([len(e.what) for e in entries] + [4]), 48) + 1
    lines.append(f"{'TIME':<13}{'FUNCTION':<15}{'WHAT':<{what}}{'EVENT':<22}{'OUTCOME':<9}"
                 f"{'MS':>8}  {'TRACE':<9}DETAIL")
    for e in entries:
        short = (e.event_type or "").removeprefix("shop.").removesuffix(".v1")
        when = _local_time(e.at)
        lines.append(f"{when:<13}{e.function[:14]:<15}{e.what[:what - 1]:<{what}}{short[:21]:<22}"
                     f"{e.outcome or '':<9}{'' if e.duration_ms is None else e.duration_ms:>8}"
                     f"  {_short(e.trace_id):<9}{e.detail or ''}{_links(e)}".rstrip())
    return "\n".join(lines)


def _short(trace_id: str | None) -> str:
    return (trace_id or "")[:8]


def _links(entry: Entry) -> str:
    return f", links to {_short(entry.links_to)}" if entry.links_to else ""


def as_json(entries: list[Entry]) -> list[dict[str, Any]]:
    return [asdict(e) for e in entries]


def _local_time(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        return stamp[:12]
