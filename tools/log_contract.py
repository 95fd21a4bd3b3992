"""The logging contract, machine-readable: every field a function (or the local runtime) may
write, its Elasticsearch type, and which fields each event.action requires
(docs/observability.md explains it for people). Tests hold the code and elk/ to it: the
index template maps exactly these fields, the Logstash pipeline and the Kibana saved
objects use only these, and every line a function writes passes `violations()`. No other
field may be written, labels.* excepted (ECS labels are open-ended keywords)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from common.events.models import CancelReason
from common.logging import ECS_VERSION
from common.order_state import Status

FieldType = Literal["keyword", "text", "long", "date"]
# Who writes a field: the functions (ecs-logging), the local runtime (tools/runtime), or
# the shipping chain (Filebeat metadata, Logstash routing) on its way to Elasticsearch.
Origin = Literal["function", "runtime", "shipper"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    origin: Origin
    description: str
    # A leaf of an array of objects (span.links): the line holds one value per element.
    repeated: bool = False


def _fields(*rows: tuple[str, FieldType, Origin, str]) -> dict[str, Field]:
    return {name: Field(name, type_, origin, text) for name, type_, origin, text in rows}


FIELDS: dict[str, Field] = _fields(
    ("@timestamp", "date", "function", "when the line was written (UTC, ISO 8601)"),
    ("ecs.version", "keyword", "function", "the ECS version the line follows (ECS_VERSION)"),
    ("log.level", "keyword", "function", "debug / info / warning / error / critical"),
    ("message", "text", "function", "one readable sentence; redacted"),
    ("service.name", "keyword", "function", "the function (Knative Service name)"),
    ("event.action", "keyword", "function", "what happened: see ACTIONS"),
    ("event.outcome", "keyword", "function", "success / failure / unknown"),
    ("event.duration", "long", "function", "handling time in nanoseconds"),
    ("cloudevents.id", "keyword", "function", "id of the CloudEvent being handled"),
    ("cloudevents.type", "keyword", "function", "its type, e.g. shop.order.created.v1"),
    ("cloudevents.source", "keyword", "function", "its source, e.g. /saga/api"),
    ("trace.id", "keyword", "function", "W3C trace id: an order's own, or a later request's"),
    ("span.id", "keyword", "function", "this function's span within the trace"),
    ("error.type", "keyword", "function", "short error class or problem title"),
    ("error.message", "keyword", "function", "error detail; redacted, never a secret"),
    ("http.request.method", "keyword", "function", "api: the request method"),
    ("http.response.status_code", "long", "function", "api or step: the status answered"),
    ("url.path", "keyword", "function", "api: the request path; redacted"),
    ("user.id", "keyword", "function", "api: the authenticated subject"),
    ("labels.order_id", "keyword", "function", "the order this line is about"),
    ("labels.saga_step", "keyword", "function", "the step a function took for the event"),
    ("labels.order_status", "keyword", "function", "the order's status after a change"),
    ("labels.order_status_from", "keyword", "function", "the status before a change"),
    ("labels.cancel_reason", "keyword", "function", "why an order was cancelled"),
    ("labels.emitted", "keyword", "function", "comma-separated event types emitted"),
    ("labels.error_dest", "keyword", "function", "dlq: the URL the event failed at"),
    ("labels.error_code", "keyword", "function", "dlq: Knative's knativeerrorcode (HTTP)"),
    ("labels.duplicate", "keyword", "function", "dlq: true when already stored"),
    ("labels.idle_s", "keyword", "function", "saga.stuck: seconds without a change"),
    ("labels.operation", "keyword", "function", "console: the operation (order.cancel, ...)"),
    ("labels.audit_id", "keyword", "function", "console: the operation's console.audit row"),
    ("event.kind", "keyword", "runtime", "event (runtime-written lines)"),
    ("log.logger", "keyword", "runtime", "stdout: a function's non-JSON output, wrapped"),
    ("cloudevents.subject", "keyword", "runtime", "the event's subject (order id)"),
    ("labels.kafka_source", "keyword", "runtime", "the KafkaSource that delivered"),
    ("labels.http_status", "keyword", "runtime", "the status the function answered"),
    ("kubernetes.namespace", "keyword", "shipper", "Filebeat: the pod's namespace"),
    ("kubernetes.container.name", "keyword", "shipper", "Filebeat: the container name"),
    ("data_stream.type", "keyword", "shipper", "Logstash: logs"),
    ("data_stream.dataset", "keyword", "shipper", "Logstash: saga"),
    ("data_stream.namespace", "keyword", "shipper", "Logstash: from the k8s namespace"),
    ("tags", "keyword", "shipper", "Logstash: saga, saga_failure, ..."),
) | {
    # OpenTelemetry span links as Elastic APM stores them: a list of {trace.id, span.id}.
    # The api's request line links to the order's trace when the request is another one.
    name: Field(name, "keyword", "function", text, repeated=True) for name, text in (
        ("span.links.trace.id", "api: the trace of the order the request acted on"),
        ("span.links.span.id", "api: the span that created that order"),
    )
}

OUTCOMES = frozenset({"success", "failure", "unknown"})
LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})
ORDER_STATUSES = frozenset(s.value for s in Status)
CANCEL_REASONS = frozenset(get_args(CancelReason))
# ECS requires ecs.version in every event; the rest is what every dashboard groups by.
BASE_REQUIRED = ("@timestamp", "log.level", "message", "ecs.version", "service.name")

_EVENT = ("cloudevents.id", "cloudevents.type", "cloudevents.source")
_TRACE = ("trace.id", "span.id")
_STEP = ("event.duration", "labels.saga_step", *_EVENT, *_TRACE)
_ERROR = ("error.type", "error.message")


@dataclass(frozen=True)
class Action:
    """One event.action (or a family: a name ending in ".*") and what its lines carry."""

    name: str
    required: tuple[str, ...]
    outcomes: frozenset[str]
    origin: Origin
    description: str

    def matches(self, action: str) -> bool:
        if self.name.endswith(".*"):
            prefix = self.name[:-1]
            return action.startswith(prefix) and len(action) > len(prefix)
        return action == self.name


def _action(name: str, required: Iterable[str], outcomes: str, origin: Origin,
            text: str) -> Action:
    return Action(name, tuple(required), frozenset(outcomes.split()), origin, text)


ACTIONS: tuple[Action, ...] = (
    _action("saga.step.completed", ("labels.order_id", *_STEP), "success", "function",
            "a function handled an event and committed its effects"),
    _action("saga.step.skipped_duplicate", ("labels.order_id", *_STEP), "success", "function",
            "a redelivered event found its inbox row: effects skipped"),
    _action("saga.step.failed", (*_STEP, *_ERROR), "failure", "function",
            "refused for good (4xx): Knative dead-letters it"),
    _action("saga.step.retried", (*_STEP, *_ERROR), "failure", "function",
            "transient fault (5xx): the KafkaSource retries with backoff"),
    _action("saga.compensation.*", ("labels.order_id", *_STEP), "success", "function",
            "a compensation undid an earlier step: released, returned, refunded, unfrozen"),
    _action("saga.order.status_changed", ("labels.order_id", "labels.order_status", *_TRACE),
            "success", "function", "the order state machine committed a transition"),
    _action("saga.dlq", ("cloudevents.id", "cloudevents.type"), "success failure", "function",
            "the dlq function stored (or failed to store) a dead letter"),
    _action("saga.stuck", ("labels.order_id", "labels.order_status"), "unknown", "function",
            "a non-terminal order has not changed for SAGA_STUCK_AFTER_S"),
    _action("saga.timeouts.ran", ("event.duration",), "success", "function",
            "the timeouts sweep ran (labels: counts)"),
    _action("saga.timeouts.failed", ("event.duration", *_ERROR), "failure", "function",
            "the timeouts sweep failed"),
    _action("saga.outbox-relay.ran", ("event.duration",), "success", "function",
            "the outbox relay ran (labels: counts)"),
    _action("saga.outbox-relay.failed", ("event.duration", *_ERROR), "failure", "function",
            "the outbox relay failed"),
    _action("saga.retention.ran", ("event.duration",), "success", "function",
            "the retention sweep ran (labels: rows deleted per table)"),
    _action("saga.retention.failed", ("event.duration", *_ERROR), "failure", "function",
            "the retention sweep failed"),
    _action("saga.bootstrap.*", (), "success failure", "function",
            "the bootstrap Job: a product added or kept, the first admin, done or failed"),
    _action("http.request", ("http.request.method", "url.path", "http.response.status_code",
                             "event.duration", *_TRACE), "success failure", "function",
            "the api (or the console) answered one request"),
    _action("saga.console.operation", ("user.id", "labels.operation", *_TRACE),
            "success failure", "function",
            "an operator's operation in the console committed (failure: refused), as its "
            "console.audit row says (labels.audit_id)"),
    _action("saga.cold_start", ("event.duration",), "success", "runtime",
            "a scaled-to-zero function was started (local runtime)"),
    _action("saga.scale_to_zero", (), "success", "runtime",
            "an idle min-scale 0 function was stopped (local runtime)"),
    _action("knative.delivery.*", ("cloudevents.id", "cloudevents.type", "labels.kafka_source"),
            "failure", "runtime", "local KafkaSource: retry, dropped or dead_lettered"),
    _action("knative.ping.failed", ("cloudevents.id",), "failure", "runtime",
            "local PingSource could not deliver a tick"),
)

_PATTERNS: dict[str, re.Pattern[str]] = {
    "trace.id": re.compile(r"^[0-9a-f]{32}$"),
    "span.id": re.compile(r"^[0-9a-f]{16}$"),
    "span.links.trace.id": re.compile(r"^[0-9a-f]{32}$"),
    "span.links.span.id": re.compile(r"^[0-9a-f]{16}$"),
}

# What a leaked secret looks like. common/logging.py redacts these shapes; this is the
# independent check that nothing got past it (a JWT, a password in a URL or key=value).
_SECRET_SHAPES: dict[str, re.Pattern[str]] = {
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    "a password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s\"]+:(?!\*\*\*@)[^@\s\"/]+@",
                                      re.I),
    "a secret as key=value": re.compile(r"(?:password|passwd|secret|token)=(?!\*\*\*)[^\s\"&]+",
                                        re.I),
    "a bearer token": re.compile(r"bearer\s+(?!\[REDACTED)[A-Za-z0-9._~+/-]{16,}", re.I),
}


class ContractError(ValueError):
    """A line that is not a JSON object at all."""


def field_spec(name: str) -> Field | None:
    """The declared field, or a keyword for any other labels.* (ECS labels are open)."""
    spec = FIELDS.get(name)
    if spec is None and name.startswith("labels.") and name.count(".") == 1:
        return Field(name, "keyword", "function", "a handler's own label")
    return spec


def action_spec(action: str) -> Action | None:
    return next((a for a in ACTIONS if a.matches(action)), None)


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted names for an ECS document, whether it was written nested or dotted
    (ecs-logging writes both: "log.level" flat, {"event": {...}} nested). An array of
    objects (span.links) becomes one list per leaf, as Elasticsearch indexes it."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for item in value:
                for leaf, leaf_value in flatten(item, f"{name}.").items():
                    flat.setdefault(leaf, []).append(leaf_value)
        else:
            flat[name] = value
    return flat


def parse_line(line: str) -> dict[str, Any]:
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ContractError(f"not JSON: {exc.msg} in {line[:120]!r}") from None
    if not isinstance(doc, dict):
        raise ContractError(f"not a JSON object: {line[:120]!r}")
    return doc


def violations(doc: Mapping[str, Any]) -> list[str]:
    """Every way one decoded log line breaks the contract; empty when it complies."""
    flat = flatten(doc)
    problems = [f"missing {name}" for name in BASE_REQUIRED if name not in flat]
    for name, value in flat.items():
        # null is "not written" (Elasticsearch indexes nothing for it), not a wrong type.
        if value is not None:
            problems.extend(_check_field(name, value))
    action = flat.get("event.action")
    if action is None:
        # A plain diagnostic line (an exception, a library warning): allowed, no contract
        # beyond the base fields; dashboards never count these.
        return problems
    if not isinstance(action, str):
        return problems
    spec = action_spec(action)
    if spec is None:
        return [*problems, f"event.action {action!r} is not in the contract"]
    problems.extend(f"{action} requires {name}" for name in spec.required
                    if flat.get(name) in (None, ""))
    outcome = flat.get("event.outcome")
    if outcome not in spec.outcomes:
        problems.append(f"{action} has event.outcome {outcome!r}, expected one of "
                        f"{sorted(spec.outcomes)}")
    if (action == "saga.order.status_changed" and flat.get("labels.order_status") == "CANCELLED"
            and not flat.get("labels.cancel_reason")):
        problems.append("a change to CANCELLED requires labels.cancel_reason")
    return problems


def secrets_in(text: str) -> list[str]:
    """The kinds of secret that appear in `text` (a raw log line)."""
    return [kind for kind, shape in _SECRET_SHAPES.items() if shape.search(text)]


def validate_line(line: str) -> list[str]:
    """Parse one raw line and return every contract violation, secrets included."""
    try:
        doc = parse_line(line)
    except ContractError as exc:
        return [str(exc)]
    return [*violations(doc), *(f"contains {kind}" for kind in secrets_in(line))]


def _check_field(name: str, value: Any) -> list[str]:
    spec = field_spec(name)
    if spec is None:
        return [f"{name} is not a contract field (declare it in tools/log_contract.py)"]
    if spec.origin == "shipper":
        return [f"{name} is added by the shipper; a function must not write it"]
    if spec.repeated and isinstance(value, list):
        return [problem for item in value for problem in _check_one(spec, item)]
    return _check_one(spec, value)


def _check_one(spec: Field, value: Any) -> list[str]:
    name = spec.name
    if not _has_type(spec.type, value):
        return [f"{name} should be a {spec.type}, got {type(value).__name__} {value!r:.60}"]
    return _check_value(name, value)


def _check_value(name: str, value: Any) -> list[str]:
    pattern = _PATTERNS.get(name)
    allowed = _ALLOWED_VALUES.get(name)
    if pattern is not None and not pattern.match(value):
        return [f"{name} {value!r} is malformed"]
    if allowed is not None and value not in allowed:
        return [f"{name} {value!r} is not one of {sorted(allowed)}"]
    if name == "event.duration" and value < 0:
        return [f"event.duration {value} is negative"]
    return []


_ALLOWED_VALUES: dict[str, frozenset[str]] = {
    "ecs.version": frozenset({ECS_VERSION}),
    "event.outcome": OUTCOMES,
    "log.level": LEVELS,
    "labels.order_status": ORDER_STATUSES,
    "labels.order_status_from": ORDER_STATUSES,
    "labels.cancel_reason": CANCEL_REASONS,
}


def _has_type(type_: FieldType, value: Any) -> bool:
    if type_ == "long":
        return isinstance(value, int) and not isinstance(value, bool)
    if not isinstance(value, str):
        return False
    if type_ == "date":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return False
    return True
