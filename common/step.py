"""The step runtime: what every CloudEvents function does with an event
(docs/architecture.md, "The step contract"): parse it (unknown type, bad data: 4xx, which
Knative does not retry); in one unit of work, its inbox row (a duplicate skips the effects
and re-publishes what its first delivery left), the handler's effects and its outbox rows;
publish after commit. Business outcomes are events and answer 2xx, transient faults 503
(retried). One ECS line per handled event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cloudevents.http import CloudEvent
from pydantic import BaseModel, ValidationError

from common.events.catalogue import CATALOGUE
from common.logging import log_event
from common.outbox import Outbox
from common.pg import Tx
from common.problems import Problem, fault
from common.settings import Settings
from common.tracing import TraceContext, continue_or_start
from common.unit_of_work import StoreFactory, UnitOfWork, UnitsOfWork

S = TypeVar("S")

log = logging.getLogger("saga.step")

MAX_EVENT_BYTES = 256 * 1024


@dataclass
class StepContext(Generic[S]):
    """What a handler gets: its function's store (the data access of this transaction), the
    unit of work, and a way to emit events in it."""

    uow: UnitOfWork
    store: S
    event: CloudEvent
    consumer: str
    settings: Settings
    outbox: Outbox
    order_id: str
    # Handlers may refine the log line, e.g. action "saga.compensation.released".
    action: str = "saga.step.completed"
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def tx(self) -> Tx:
        """The transaction itself, for handlers without a store of their own."""
        return self.uow.tx

    def emit(self, event_type: str, data: BaseModel) -> CloudEvent:
        return self.outbox.emit(event_type, data, partition_key=self.order_id)


Handler = Callable[[StepContext[Any], Any], None]


def no_store(_tx: Tx, _outbox: Outbox) -> None:
    """The store of a function whose handlers use ctx.tx directly."""


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
        units: UnitsOfWork,
        store: StoreFactory[Any] = no_store,
    ) -> None:
        for event_type in handlers:
            spec = CATALOGUE.get(event_type)
            if spec is None or consumer not in spec.consumers:
                raise ValueError(f"{consumer} is not a catalogued consumer of {event_type}")
        self.consumer = consumer
        self.handlers = dict(handlers)
        self._units = units
        self._store = store

    def handle(self, event: CloudEvent) -> None:
        """Handle one delivery; raises Problem for every non-2xx answer."""
        started = time.perf_counter_ns()
        trace = continue_or_start(_attr(event, "traceparent"))
        # Every line names its step; a handler's own name ("reserve") replaces the default.
        fields = event_fields(event, trace) | {"labels.saga_step": _default_step(event)}
        try:
            handler, data = self._parse(event)
            outcome = self._apply(event, handler, data, trace)
        except Problem as problem:
            # 4xx goes to the dead-letter sink; 5xx will be retried by the KafkaSource.
            log_event(
                log, f"{self.consumer} refused {fields['cloudevents.type']}: {problem.title}",
                action="saga.step.retried" if problem.retried else "saga.step.failed",
                outcome="failure", level=logging.WARNING,
                fields=fields | {
                    "event.duration": time.perf_counter_ns() - started,
                    "http.response.status_code": problem.status,
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
        settings = self._units.settings
        event_id = _attr(event, "id") or ""
        event_type = _attr(event, "type") or ""
        order_id = str(getattr(data, "order_id", "") or _attr(event, "partitionkey") or "")

        def work(uow: UnitOfWork) -> _Outcome:
            if not uow.first_delivery(self.consumer, event_id, event_type):
                leftovers = uow.unpublished(self.consumer, event_id)
                uow.republish(leftovers)
                return _Outcome("saga.step.skipped_duplicate", leftovers, {})
            outbox = uow.outbox(trace)
            ctx = StepContext(uow, uow.store(self._store, outbox), event, self.consumer,
                              settings, outbox, order_id)
            handler(ctx, data)
            return _Outcome(ctx.action, uow.emitted, ctx.labels)

        try:
            return self._units.run_unit_of_work(self.consumer, work, caused_by=event_id)
        except Exception as exc:
            problem = fault(exc, "step failed")
            if not problem.retried:
                log.exception("%s failed on %s", self.consumer, event_type)
            raise problem from None


def _attr(event: CloudEvent, name: str) -> str | None:
    value = event.get(name)
    return None if value is None else str(value)


def event_fields(event: CloudEvent, trace: TraceContext | None = None) -> dict[str, Any]:
    """The ECS fields of every line about `event` (a step's, a ping job's)."""
    fields = {
        "cloudevents.id": _attr(event, "id"),
        "cloudevents.type": _attr(event, "type"),
        "cloudevents.source": _attr(event, "source"),
        "labels.order_id": _attr(event, "partitionkey") or _attr(event, "subject"),
    }
    if trace is not None:
        fields["trace.id"] = trace.trace_id
        fields["span.id"] = trace.span_id
    return fields


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
