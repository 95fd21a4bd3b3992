"""The runner of PingSource-triggered jobs (timeouts, outbox-relay). Not a saga step (no
catalogue type, no inbox: a ping is a tick, and each job is safe to run any number of
times), but the same answers: a wrong event type is 400, a transient fault 503 (retried),
one ECS line per run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from cloudevents.http import CloudEvent

from common.logging import log_event
from common.problems import Problem, fault
from common.resources import Resources
from common.step import event_fields

PING_TYPE = "dev.knative.sources.ping"

Job = Callable[[Resources], Mapping[str, int]]

log = logging.getLogger("saga.ping")


def run_ping(event: CloudEvent, name: str, job: Job, resources: Resources) -> None:
    started = time.perf_counter_ns()
    fields = event_fields(event)
    event_type = fields["cloudevents.type"] or ""
    if event_type != PING_TYPE:
        problem = Problem(400, "unsupported event type", f"{name} runs on {PING_TYPE} only")
        log_event(log, f"{name} refused {event_type}", action=f"saga.{name}.failed",
                  outcome="failure", level=logging.WARNING, fields=fields | {
                      "error.type": problem.title, "error.message": problem.detail,
                      "event.duration": time.perf_counter_ns() - started})
        raise problem
    try:
        counts = job(resources)
    except Exception as exc:
        log_event(log, f"{name} run failed", action=f"saga.{name}.failed", outcome="failure",
                  level=logging.ERROR, fields=fields | {
                      "error.type": type(exc).__name__, "error.message": str(exc)[:500],
                      "event.duration": time.perf_counter_ns() - started})
        raise fault(exc, f"{name} failed") from None
    # ECS labels are keywords: counts go out as strings, like every other label.
    log_event(log, f"{name} ran", action=f"saga.{name}.ran", outcome="success",
              fields=fields | {f"labels.{k}": str(v) for k, v in counts.items()} | {
                  "event.duration": time.perf_counter_ns() - started})
