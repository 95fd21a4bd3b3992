"""Writes saga-dashboards.ndjson: the data view on logs-saga-* and three dashboards.

    python elk/kibana/build.py           rewrite the NDJSON from these definitions
    python elk/kibana/build.py --check   exit 1 if the NDJSON is not what they produce

Every field below is a field of tools/log_contract.py, and every query is KQL over them;
tests/contract/test_elk_saved_objects.py and test_elk_queries.py hold the NDJSON to that
and run each panel's query against real and generated log lines.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# A script next to its helper module, not a package: hence the sys.path line above.
from lens import (
    Lens,
    Panel,
    Search,
    dashboard,
    data_view,
    date_histogram,
    metric,
    terms,
)

OUT = Path(__file__).resolve().parent / "saga-dashboards.ndjson"

STEPS = "event.action : (saga.step.* or saga.compensation.*)"
FAILURES = "event.action : (saga.step.failed or saga.step.retried)"
ENDED = ('event.action : "saga.order.status_changed" and '
         'labels.order_status : ("COMPLETED" or "CANCELLED")')

# --- Overview ----------------------------------------------------------------------------

ORDERS_PER_MINUTE = Lens(
    "saga-orders-per-minute", "Orders placed per minute",
    "New orders: the state machine's change to CREATED.",
    'event.action : "saga.order.status_changed" and labels.order_status : "CREATED"',
    {"t": date_histogram("1m"), "n": metric("count", "Orders placed")}, "xy")

ORDER_OUTCOMES = Lens(
    "saga-order-outcomes", "How orders ended, by reason",
    "Orders that reached COMPLETED or CANCELLED, cancellations by reason "
    "(out_of_stock, insufficient_funds, payment_timeout, cancelled_by_customer, "
    "shipping_failed, cancelled_by_operator).",
    ENDED,
    {"status": terms("labels.order_status", "Final status", size=2, order_by="n"),
     "reason": terms("labels.cancel_reason", "Reason", size=10, order_by="n", missing=True),
     "n": metric("count", "Orders")}, "table", sort=("n", "desc"))

STEP_THROUGHPUT = Lens(
    "saga-step-throughput", "Events handled per minute, by function",
    "Every event a function handled (completed, duplicate, failed, retried, compensation).",
    STEPS, {"t": date_histogram("1m"),
            "fn": terms("service.name", "Function", size=10, order_by="n"),
            "n": metric("count", "Events handled")}, "xy")

STEP_LATENCY = Lens(
    "saga-step-latency", "Step latency by function (p95 and median)",
    "Handling time of completed steps and compensations, including the transaction.",
    "event.action : (saga.step.completed or saga.compensation.*)",
    {"fn": terms("service.name", "Function", size=10, order_by="n"),
     "p95": metric("percentile", "p95", "event.duration", percentile=95),
     "p50": metric("median", "Median", "event.duration"),
     "n": metric("count", "Steps")}, "table", sort=("p95", "desc"))

FAILURES_AND_RETRIES = Lens(
    "saga-failures-retries", "Failed and retried steps per minute",
    "failed: refused for good (4xx, dead-lettered); retried: transient (5xx), redelivered.",
    FAILURES, {"t": date_histogram("1m"),
               "what": terms("event.action", "Kind", size=2, order_by="n"),
               "n": metric("count", "Steps")}, "xy")

DEAD_LETTERS = Lens(
    "saga-dead-letters", "Dead letters stored",
    "Events Knative gave up on, stored by the dlq function (saga dlq show ID).",
    'event.action : "saga.dlq" and event.outcome : "success" and not labels.duplicate : "true"',
    {"n": metric("count", "Dead letters")}, "metric")

COMPENSATIONS = Lens(
    "saga-compensations", "Compensations by kind",
    "Undone steps after a cancellation: stock released or returned, money refunded or "
    "unfrozen.",
    "event.action : saga.compensation.*",
    {"kind": terms("event.action", "Compensation", size=10, order_by="n"),
     "fn": terms("service.name", "Function", size=10, order_by="n"),
     "n": metric("count", "Compensations")}, "table", sort=("n", "desc"))

COLD_STARTS = Lens(
    "saga-cold-starts", "Cold starts by function",
    "A scaled-to-zero function started for an event (the local runtime reports these).",
    'event.action : "saga.cold_start"',
    {"fn": terms("service.name", "Function", size=10, order_by="n"),
     "n": metric("count", "Cold starts"),
     "p50": metric("median", "Median start time", "event.duration")}, "table",
    sort=("n", "desc"))

STUCK = Lens(
    "saga-stuck-orders", "Stuck orders",
    "Orders the timeouts sweep found unchanged for longer than SAGA_STUCK_AFTER_S.",
    'event.action : "saga.stuck"',
    {"n": metric("unique_count", "Stuck orders", "labels.order_id")}, "metric")

# --- One order's trail -------------------------------------------------------------------

TRAIL = Search(
    "saga-order-trail-lines", "Order trail: every line of the selected order",
    "Pick an order above; the lines are in time order. Then: saga trace ORDER_ID.",
    "labels.order_id : *",
    ["service.name", "event.action", "event.outcome", "cloudevents.type", "labels.saga_step",
     "labels.order_status", "error.type", "error.message", "trace.id", "span.links.trace.id"])

# An order is one trace from its POST /orders on, plus one trace per later request that
# acted on it (pay, cancel), each linking to the order's (docs/observability.md, "One
# order, its traces"). These two panels name them, the trail's lines carry them.
TRAIL_TRACES = Lens(
    "saga-order-trail-traces", "Traces of the selected order",
    "The order's own trace first (from its POST /orders), then one per request that acted "
    "on it later; filter on a trace.id to see what that request caused.",
    "trace.id : *",
    {"trace": terms("trace.id", "Trace", size=20, order_by="began", direction="asc"),
     "began": metric("min", "Began", "@timestamp"),
     "ended": metric("max", "Last line", "@timestamp"),
     "n": metric("count", "Lines")}, "table", sort=("began", "asc"))

TRAIL_REQUESTS = Search(
    "saga-order-trail-requests", "Requests that acted on the selected order",
    "Who placed, paid or cancelled it, each request's trace and the order's trace it links "
    "to.",
    'event.action : "http.request"',
    ["http.request.method", "url.path", "http.response.status_code", "user.id", "trace.id",
     "span.links.trace.id"])

TRAIL_STATUSES = Lens(
    "saga-order-trail-statuses", "Status changes of the selected order",
    "Each status the order reached, and when.",
    'event.action : "saga.order.status_changed"',
    {"status": terms("labels.order_status", "Status", size=10, order_by="at",
                     direction="asc"),
     "at": metric("min", "Reached at", "@timestamp")}, "table", sort=("at", "asc"))

TRAIL_FUNCTIONS = Lens(
    "saga-order-trail-functions", "Functions the selected order went through",
    "Events each function handled for the order, and the time it spent on them.",
    STEPS,
    {"fn": terms("service.name", "Function", size=10, order_by="first", direction="asc"),
     "first": metric("min", "First event", "@timestamp"),
     "n": metric("count", "Events handled"),
     "time": metric("sum", "Time spent", "event.duration")}, "table", sort=("first", "asc"))

# --- Errors --------------------------------------------------------------------------------

FAILED_STEPS = Lens(
    "saga-failed-steps", "Failed steps: function, error type and message",
    "Refused (failed) and transient (retried) steps; error.message is redacted.",
    FAILURES,
    {"fn": terms("service.name", "Function", size=10, order_by="n"),
     "kind": terms("event.action", "Kind", size=2, order_by="n"),
     "type": terms("error.type", "Error type", size=20, order_by="n"),
     "message": terms("error.message", "Error message", size=20, order_by="n"),
     "n": metric("count", "Times"),
     "last": metric("max", "Last seen", "@timestamp")}, "table", sort=("n", "desc"))

DLQ_ENTRIES = Lens(
    "saga-dlq-entries", "Dead letters: event type, failing destination, Knative error code",
    "knativeerrorcode is the HTTP status the destination answered last.",
    'event.action : "saga.dlq"',
    {"type": terms("cloudevents.type", "Event type", size=20, order_by="n"),
     "dest": terms("labels.error_dest", "Failed at", size=20, order_by="n", missing=True),
     "code": terms("labels.error_code", "Knative error code", size=10, order_by="n",
                   missing=True),
     "n": metric("count", "Dead letters"),
     "last": metric("max", "Last seen", "@timestamp")}, "table", sort=("n", "desc"))

FAILURES_BY_FUNCTION = Lens(
    "saga-failures-by-function", "Failures per minute, by function",
    "Every line with event.outcome failure.",
    'event.outcome : "failure"',
    {"t": date_histogram("1m"),
     "fn": terms("service.name", "Function", size=10, order_by="n"),
     "n": metric("count", "Failures")}, "xy")

ERROR_LINES = Search(
    "saga-error-lines", "Error lines, newest first",
    "Failures and errors with their order: open the order's trail from labels.order_id.",
    'event.outcome : "failure" or log.level : ("error" or "critical")',
    ["service.name", "event.action", "labels.order_id", "cloudevents.id", "error.type",
     "error.message", "http.response.status_code"], sort="desc")

FIELD_LABELS = {
    "labels.order_id": "Order", "labels.saga_step": "Step", "service.name": "Function",
    "event.duration": "Duration", "labels.order_status": "Status",
    "labels.cancel_reason": "Cancel reason", "labels.error_code": "Knative error code",
    "trace.id": "Trace", "span.links.trace.id": "Links to trace",
}


def objects() -> list[dict[str, Any]]:
    overview = [
        Panel(ORDERS_PER_MINUTE, 0, 0, 24, 12), Panel(ORDER_OUTCOMES, 24, 0, 24, 12),
        Panel(STEP_THROUGHPUT, 0, 12, 24, 14), Panel(STEP_LATENCY, 24, 12, 24, 14),
        Panel(FAILURES_AND_RETRIES, 0, 26, 24, 12), Panel(DEAD_LETTERS, 24, 26, 12, 12),
        Panel(STUCK, 36, 26, 12, 12), Panel(COMPENSATIONS, 0, 38, 24, 12),
        Panel(COLD_STARTS, 24, 38, 24, 12),
    ]
    trail = [Panel(TRAIL_STATUSES, 0, 0, 16, 12), Panel(TRAIL_FUNCTIONS, 16, 0, 32, 12),
             Panel(TRAIL_TRACES, 0, 12, 20, 12), Panel(TRAIL_REQUESTS, 20, 12, 28, 12),
             Panel(TRAIL, 0, 24, 48, 24)]
    errors = [Panel(FAILED_STEPS, 0, 0, 48, 14), Panel(DLQ_ENTRIES, 0, 14, 48, 12),
              Panel(FAILURES_BY_FUNCTION, 0, 26, 24, 12), Panel(ERROR_LINES, 24, 26, 24, 24)]
    panels = [p.object for p in overview + trail + errors]
    return [
        data_view("logs-saga-*", "Order saga logs", FIELD_LABELS),
        *(p.saved_object() for p in panels),
        dashboard("saga-overview", "Order saga: overview",
                  "Orders in and out, step throughput and latency, failures, dead letters, "
                  "compensations, cold starts.", overview),
        dashboard("saga-order-trail", "Order saga: one order's trail",
                  "Pick an order id: every line of that order in time order, its traces and "
                  "the requests that acted on it.", trail,
                  controls=(("labels.order_id", "Order id"),)),
        dashboard("saga-errors", "Order saga: errors and dead letters",
                  "Failed steps with their error, dead letters with Knative's error code.",
                  errors),
    ]


def render() -> str:
    return "".join(json.dumps(o, sort_keys=True, ensure_ascii=False) + "\n" for o in objects())


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python elk/kibana/build.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
