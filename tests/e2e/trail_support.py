"""Checks on what a real run wrote to <state dir>/logs/*.ndjson, the files Filebeat (or
any other shipper) takes to Kibana: every line an ECS document that keeps the logging
contract, and every order's lines in the traces docs/observability.md ("One order, its
traces") promises. Used by the e2e tests that drive a whole stack (the demo, a workload).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, pool, select

from common import tables as t
from common.logging import ECS_VERSION
from common.settings import to_sqlalchemy_url
from common.tracing import parse_traceparent
from tools.log_contract import BASE_REQUIRED, flatten, validate_line

# The lines that record what happened to an order (not diagnostics, not the runtime's).
HANDLED = ("saga.step.", "saga.compensation.", "saga.order.", "http.request")


def log_lines(logs_dir: Path) -> list[str]:
    return [line for path in sorted(logs_dir.glob("*.ndjson"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def ecs_problems(lines: Iterable[str]) -> dict[str, list[str]]:
    """Line (shortened) -> what is wrong with it: ECS's required fields (ecs.version, ours),
    the base fields every dashboard groups by, and whatever else the contract requires of
    its event.action (event.outcome among them)."""
    broken: dict[str, list[str]] = {}
    for line in lines:
        problems = validate_line(line)
        if not problems:
            doc = flatten(json.loads(line))
            problems = [f"missing {name}" for name in BASE_REQUIRED if name not in doc]
            if doc["ecs.version"] != ECS_VERSION:
                problems.append(f"ecs.version {doc['ecs.version']!r}")
            if "event.action" in doc and "event.outcome" not in doc:
                problems.append("event.action without event.outcome")
        if problems:
            broken[line[:160]] = problems
    return broken


@dataclass(frozen=True)
class OrderRecord:
    id: str
    traceparent: str | None
    customer_changes: tuple[str, ...]  # statuses a customer's request set after CREATED


def orders_of(database_url: str) -> list[OrderRecord]:
    """Every order of the database, its trace context and what its customer changed."""
    engine = create_engine(to_sqlalchemy_url(database_url), poolclass=pool.NullPool)
    history = t.order_status_history
    try:
        with engine.connect() as conn:
            orders = conn.execute(select(t.orders.c.id, t.orders.c.traceparent)).all()
            changes = conn.execute(select(history.c.order_id, history.c.to_status)
                                   .where(history.c.actor.like("customer:%"),
                                          history.c.from_status.is_not(None))
                                   .order_by(history.c.id)).all()
    finally:
        engine.dispose()
    return [OrderRecord(str(o.id), o.traceparent,
                        tuple(c.to_status for c in changes if c.order_id == o.id))
            for o in orders]


def trace_problems(docs: list[dict[str, Any]], order: OrderRecord) -> list[str]:
    """How the order's lines break docs/observability.md, "One order, its traces": the
    order's own trace holds what its POST /orders and the saga by itself did; every later
    request that acted on it is a trace of its own, linking to the span that created the
    order, and holds what that request caused."""
    own = parse_traceparent(order.traceparent)
    if own is None:
        return [f"order {order.id} keeps no trace context"]
    mine = [d for d in docs if d.get("labels.order_id") == order.id
            and str(d.get("event.action", "")).startswith(HANDLED)]
    requests = [d for d in mine if d["event.action"] == "http.request"]
    placed = [d for d in requests if d["url.path"] == "/orders"]
    later = [d for d in requests if d["url.path"] != "/orders"]
    problems = []
    creating = [d for d in placed if d["span.id"] == own.span_id]
    if [(d["trace.id"], d.get("span.links.trace.id")) for d in creating] != [
            (own.trace_id, None)]:
        problems.append(f"no POST /orders line is the order's own span: {placed}")
    for request in later:
        where = f"{request['http.request.method']} {request['url.path']}"
        if request["trace.id"] == own.trace_id:
            problems.append(f"{where} is in the order's own trace")
        if (request.get("span.links.trace.id"), request.get("span.links.span.id")) != (
                [own.trace_id], [own.span_id]):
            problems.append(f"{where} links to {request.get('span.links.trace.id')}")
    # A replayed POST /orders (same Idempotency-Key) is a request of its own too.
    expected = {own.trace_id} | {d["trace.id"] for d in later + placed}
    if stray := {d["trace.id"] for d in mine} - expected:
        problems.append(f"lines in traces no request began: {sorted(stray)}")
    request_traces = {d["trace.id"] for d in later}
    for status in order.customer_changes:
        changed = [d["trace.id"] for d in mine if d.get("labels.order_status") == status
                   and d["event.action"] == "saga.order.status_changed"]
        if not changed or not set(changed) <= request_traces:
            problems.append(f"the customer's change to {status} is not in its request's "
                            f"trace: {changed}")
    return problems
