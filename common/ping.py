"""The runner of PingSource-triggered jobs (timeouts, outbox-relay). Not a saga step (no
catalogue type, no inbox: a ping is a tick, and each job is safe to run any number of
times), but the same answers: a wrong event type is 400, a transient fault 503 (retried),
one ECS line per run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from cloudevents.http import CloudEvent

from common.db import is_transient
from common.event_server import Endpoint, event_endpoint
from common.logging import configure_logging, log_event
from common.problems import Problem
from common.settings import Settings, get_settings
from common.step import MAX_EVENT_BYTES

PING_TYPE = "dev.knative.sources.ping"

Job = Callable[[Settings], Mapping[str, int]]

log = logging.getLogger("saga.ping")


def ping_function(name: str, job: Job) -> Endpoint:
    """What main.py does at import: ECS logging, and the endpoint that runs `job` on every
    ping (malformed requests answer 400, like a step's)."""
    configure_logging(name, get_settings().log_level)
    return event_endpoint(lambda event, _headers, _body: run_ping(event, name, job),
                          max_body=MAX_EVENT_BYTES)


def run_ping(event: CloudEvent, name: str, job: Job) -> None:
    started = time.perf_counter_ns()
    event_type = str(event.get("type") or "")
    fields: dict[str, Any] = {
        "cloudevents.id": event.get("id"), "cloudevents.type": event_type,
        "cloudevents.source": event.get("source"),
    }
    if event_type != PING_TYPE:
        log_event(log, f"{name} refused {event_type}", action=f"saga.{name}.failed",
                  outcome="failure", level=logging.WARNING, fields=fields | {
                      "error.type": "unsupported event type",
                      "error.message": f"{name} runs on {PING_TYPE} only",
                      "event.duration": time.perf_counter_ns() - started})
        raise Problem(400, "unsupported event type", f"{name} runs on {PING_TYPE} only")
    try:
        counts = job(get_settings())
    except Exception as exc:
        retried = is_transient(exc)
        log_event(log, f"{name} run failed", action=f"saga.{name}.failed", outcome="failure",
                  level=logging.ERROR, fields=fields | {
                      "error.type": type(exc).__name__, "error.message": str(exc)[:500],
                      "event.duration": time.perf_counter_ns() - started})
        if retried:
            raise Problem(503, "temporarily unavailable", type(exc).__name__) from None
        raise Problem(500, f"{name} failed", type(exc).__name__) from None
    # ECS labels are keywords: counts go out as strings, like every other label.
    log_event(log, f"{name} ran", action=f"saga.{name}.ran", outcome="success",
              fields=fields | {f"labels.{k}": str(v) for k, v in counts.items()} | {
                  "event.duration": time.perf_counter_ns() - started})
