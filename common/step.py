"""The step runtime: what every CloudEvents function does with an event
(docs/architecture.md, "The step contract").

1. Parse: unknown type, bad data or missing attributes answer 4xx (not 404/408/409/429),
   which Knative does not retry: the event goes to the dead-letter sink.
2. One transaction: the inbox row (consumer, event id), the handler's effects, the
   outbox rows. A duplicate delivery finds its inbox row and skips the effects.
3. After commit, publish the outbox rows and mark them; failures leave them to the relay.
   A duplicate re-publishes whatever its first delivery left unpublished.
4. Business outcomes are events and answer 2xx; transient faults answer 503, which the
   KafkaSource retries with backoff.
5. One ECS log line per handled event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudevents.http import CloudEvent
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert

from common import tables as t
from common.db import is_transient
from common.events.catalogue import CATALOGUE
from common.logging import log_event
from common.outbox import Outbox, unpublished_caused_by
from common.problems import Problem
from common.settings import Settings, get_settings
from common.tracing import TraceContext, continue_or_start
from common.unit_of_work import UnitOfWork, run_unit_of_work

log = logging.getLogger("saga.step")

MAX_EVENT_BYTES = 256 * 1024

# Built once (SQLAlchemy then only looks up the compiled statement): "seen before?" and
# "remember it" in one round trip.
_INBOX = (
    pg_insert(t.inbox)
    .values(consumer=bindparam("consumer"), event_id=bindparam("event_id"),
            event_type=bindparam("event_type"))
    .on_conflict_do_nothing()
    .returning(t.inbox.c.event_id)
)

@dataclass
class StepContext:
    """What a handler gets: the open transaction and a way to emit events in it."""

    conn: Connection
    event: CloudEvent
    consumer: str
    settings: Settings
    outbox: Outbox
    order_id: str
    # Handlers may refine the log line, e.g. action "saga.compensation.released".
    action: str = "saga.step.completed"
    labels: dict[str, str] = field(default_factory=dict)

    def emit(self, event_type: str, data: BaseModel) -> CloudEvent:
        return self.outbox.emit(event_type, data, partition_key=self.order_id)


Handler = Callable[[StepContext, Any], None]


@dataclass(frozen=True)
class _Outcome:
    action: str
    emitted: list[CloudEvent]
    labels: dict[str, str]


class StepRuntime:
    """Binds a consumer name to its handlers (event type -> handler). Cheap to construct:
    no connection is made until the first event."""

    def __init__(
        self,
        consumer: str,
        handlers: Mapping[str, Handler],
        settings: Callable[[], Settings] = get_settings,
    ) -> None:
        for event_type in handlers:
            spec = CATALOGUE.get(event_type)
            if spec is None or consumer not in spec.consumers:
                raise ValueError(f"{consumer} is not a catalogued consumer of {event_type}")
        self.consumer = consumer
        self.handlers = dict(handlers)
        self._settings = settings

    def handle(self, event: CloudEvent) -> None:
        """Handle one delivery; raises Problem for every non-2xx answer."""
        started = time.perf_counter_ns()
        trace = continue_or_start(_attr(event, "traceparent"))
        # Every line names its step; a handler's own name ("reserve") replaces the default.
        fields = _event_fields(event, trace) | {"labels.saga_step": _default_step(event)}
        try:
            handler, data = self._parse(event)
            outcome = self._apply(event, handler, data, trace)
        except Problem as problem:
            # 4xx goes to the dead-letter sink; 5xx will be retried by the KafkaSource.
            retried = (problem.code or 500) >= 500
            log_event(
                log, f"{self.consumer} refused {fields['cloudevents.type']}: {problem.title}",
                action="saga.step.retried" if retried else "saga.step.failed",
                outcome="failure", level=logging.WARNING,
                fields=fields | {
                    "event.duration": time.perf_counter_ns() - started,
                    "http.response.status_code": problem.code,
                    "error.type": problem.title,
                    "error.message": problem.detail,
                },
            )
            raise
        log_event(
            log, f"{self.consumer} handled {fields['cloudevents.type']}",
            action=outcome.action, outcome="success",
            fields=fields | {f"labels.{k}": v for k, v in outcome.labels.items()} | {
                "event.duration": time.perf_counter_ns() - started,
                "labels.emitted": ",".join(e["type"] for e in outcome.emitted) or None,
            },
        )

    # --- internals ---------------------------------------------------------------------

    def _parse(self, event: CloudEvent) -> tuple[Handler, BaseModel]:
        event_type = _attr(event, "type") or ""
        handler = self.handlers.get(event_type)
        if handler is None:
            raise Problem(400, "unsupported event type",
                          f"{self.consumer} does not handle {event_type!r}")
        data = event.get_data()
        if isinstance(data, bytes | str):
            raise Problem(400, "event data is not JSON", "the data must be a JSON object")
        try:
            model = CATALOGUE[event_type].model.model_validate(data)
        except ValidationError as exc:
            raise Problem(422, "event data violates its schema", _first_error(exc)) from None
        return handler, model

    def _apply(
        self, event: CloudEvent, handler: Handler, data: BaseModel, trace: TraceContext
    ) -> _Outcome:
        settings = self._settings()
        event_id = _attr(event, "id") or ""
        order_id = str(getattr(data, "order_id", "") or _attr(event, "partitionkey") or "")

        def work(uow: UnitOfWork) -> _Outcome:
            first_time = uow.conn.execute(_INBOX, {"consumer": self.consumer,
                                                   "event_id": event_id,
                                                   "event_type": event["type"]}).first()
            if first_time is None:
                leftovers = unpublished_caused_by(uow.conn, self.consumer, event_id)
                uow.republish(leftovers)
                return _Outcome("saga.step.skipped_duplicate", leftovers, {})
            ctx = StepContext(uow.conn, event, self.consumer, settings, uow.outbox(trace),
                              order_id)
            handler(ctx, data)
            return _Outcome(ctx.action, uow.emitted, ctx.labels)

        try:
            return run_unit_of_work(settings, self.consumer, work, caused_by=event_id)
        except Exception as exc:
            if is_transient(exc):
                raise Problem(503, "temporarily unavailable", type(exc).__name__) from None
            log.exception("%s failed on %s", self.consumer, event["type"])
            raise Problem(500, "step failed", type(exc).__name__) from None


def _attr(event: CloudEvent, name: str) -> str | None:
    value = event.get(name)
    return None if value is None else str(value)


def _event_fields(event: CloudEvent, trace: TraceContext) -> dict[str, Any]:
    return {
        "cloudevents.id": _attr(event, "id"),
        "cloudevents.type": _attr(event, "type"),
        "cloudevents.source": _attr(event, "source"),
        "labels.order_id": _attr(event, "partitionkey") or _attr(event, "subject"),
        "trace.id": trace.trace_id,
        "span.id": trace.span_id,
    }


def _default_step(event: CloudEvent) -> str:
    """The step of a line whose handler named none (duplicates, refusals): the event
    handled, without its namespace and version: shop.order.created.v1 -> order.created."""
    event_type = _attr(event, "type") or "unknown"
    parts = event_type.split(".")
    if len(parts) >= 4 and parts[0] == "shop" and parts[-1].startswith("v"):
        return ".".join(parts[1:-1])
    return event_type


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "data"
    return f"{where}: {err['msg']}"
