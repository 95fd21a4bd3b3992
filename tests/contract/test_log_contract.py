"""The contract's validator on sample lines: what passes, what each rule rejects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.logging import ECS_VERSION
from common.order_state import Status
from tools.log_contract import (
    ACTIONS,
    FIELDS,
    ORDER_STATUSES,
    action_spec,
    flatten,
    secrets_in,
    validate_line,
    violations,
)
from tools.runtime.console import LogFile, ecs_event

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def step_line(**overrides: Any) -> dict[str, Any]:
    """A saga.step.completed line as ecs-logging writes it (flat and nested keys mixed)."""
    doc: dict[str, Any] = {
        "@timestamp": "2026-01-05T10:00:00.123Z", "log.level": "info",
        "message": "inventory handled shop.order.created.v1", "ecs.version": ECS_VERSION,
        "service": {"name": "inventory"},
        "event": {"action": "saga.step.completed", "outcome": "success",
                  "duration": 12_500_000},
        "labels": {"order_id": "0b6a4f4e-5bb5-4e4c-9c1a-2f1f7c1d9e01", "saga_step": "reserve"},
        "cloudevents": {"id": "e1", "type": "shop.order.created.v1", "source": "/saga/api"},
        "trace": {"id": TRACE}, "span": {"id": SPAN},
    }
    flat = flatten(doc)
    for key, value in overrides.items():
        name = key.replace("__", ".")
        if value is None:
            flat.pop(name, None)
        else:
            flat[name] = value
    return flat


def test_a_complete_step_line_passes() -> None:
    assert violations(step_line()) == []


def test_nested_and_dotted_forms_are_the_same_line() -> None:
    nested = {"a": {"b": {"c": 1}}, "d.e": 2}
    assert flatten(nested) == {"a.b.c": 1, "d.e": 2}


@pytest.mark.parametrize("missing", ["service.name", "@timestamp", "log.level", "message",
                                     "ecs.version"])
def test_base_fields_are_required_on_every_line(missing: str) -> None:
    assert f"missing {missing}" in violations(step_line(**{missing.replace(".", "__"): None}))


@pytest.mark.parametrize("missing", ["labels.saga_step", "labels.order_id", "trace.id",
                                     "span.id", "event.duration", "cloudevents.id"])
def test_a_step_line_requires_its_fields(missing: str) -> None:
    problems = violations(step_line(**{missing.replace(".", "__"): None}))
    assert f"saga.step.completed requires {missing}" in problems


def test_a_failed_step_requires_the_error() -> None:
    line = step_line(event__action="saga.step.failed", event__outcome="failure")
    assert "saga.step.failed requires error.type" in violations(line)
    line |= {"error.type": "event data violates its schema", "error.message": "items: short"}
    assert violations(line) == []


def test_a_failure_cannot_claim_success() -> None:
    problems = violations(step_line(event__action="saga.step.retried",
                                    **{"error.type": "x", "error.message": "y"}))
    assert any("event.outcome 'success'" in p for p in problems)


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("event.duration", 12.5, "should be a long"),
    ("event.duration", "12", "should be a long"),
    ("event.duration", True, "should be a long"),
    ("event.duration", -1, "negative"),
    ("trace.id", "not-a-trace", "malformed"),
    ("span.id", TRACE, "malformed"),
    ("@timestamp", "yesterday", "should be a date"),
    ("event.outcome", "ok", "not one of"),
    ("log.level", "loud", "not one of"),
    ("labels.order_status", "SHIPPED", "not one of"),
    ("labels.order_id", 42, "should be a keyword"),
    ("labels.anything_else", 7, "should be a keyword"),
    ("ecs.version", "1.6.0", "not one of"),
])
def test_field_types_and_values(field: str, value: Any, expected: str) -> None:
    problems = violations(step_line(**{field.replace(".", "__"): value}))
    assert any(expected in p for p in problems), problems


def test_span_links_are_a_list_of_trace_and_span_ids() -> None:
    link = {"trace": {"id": "0af7651916cd43dd8448eb211c80319c"}, "span": {"id": SPAN}}
    doc = step_line() | {"span.links": [link, link]}
    assert flatten(doc)["span.links.trace.id"] == [link["trace"]["id"]] * 2
    assert violations(doc) == []
    bad = step_line() | {"span.links": [link, {"trace": {"id": "abc"}, "span": {"id": SPAN}}]}
    assert violations(bad) == ["span.links.trace.id 'abc' is malformed"]
    # Only span.links.* may hold several values; any other field holds one.
    assert any("should be a keyword" in p
               for p in violations(step_line(**{"labels.order_id": ["a", "b"]})))


def test_undeclared_fields_are_refused_but_labels_are_open() -> None:
    assert violations(step_line(**{"labels.tracking_number": "TRK-1"})) == []
    assert any("not a contract field" in p
               for p in violations(step_line(**{"order.total": "9.99"})))
    assert any("not a contract field" in p
               for p in violations(step_line(**{"labels.a.b": "nested label"})))


def test_null_is_absent_not_a_wrong_type() -> None:
    doc = step_line()
    doc["cloudevents.subject"] = None
    assert violations(doc) == []
    doc["labels.saga_step"] = None  # json null: as if it were not written
    assert "saga.step.completed requires labels.saga_step" in violations(doc)


def test_shipper_fields_are_not_for_functions() -> None:
    problems = violations(step_line(**{"kubernetes.namespace": "shop"}))
    assert any("added by the shipper" in p for p in problems)


def test_unknown_actions_are_refused_and_families_match() -> None:
    assert any("not in the contract" in p
               for p in violations(step_line(event__action="saga.step.compensated")))
    assert violations(step_line(event__action="saga.compensation.released")) == []
    assert action_spec("saga.compensation.") is None  # a family needs a member name


def test_a_cancellation_names_its_reason() -> None:
    change = {"@timestamp": "2026-01-05T10:00:00Z", "log.level": "info", "message": "m",
              "ecs.version": ECS_VERSION, "service.name": "order-saga",
              "event.action": "saga.order.status_changed", "event.outcome": "success",
              "labels.order_id": "o1",
              "labels.order_status": "CANCELLED", "trace.id": TRACE, "span.id": SPAN}
    assert "a change to CANCELLED requires labels.cancel_reason" in violations(change)
    assert violations(change | {"labels.cancel_reason": "out_of_stock"}) == []
    assert any("not one of" in p
               for p in violations(change | {"labels.cancel_reason": "bored"}))


def test_a_line_without_an_action_is_a_plain_diagnostic() -> None:
    line = {"@timestamp": "2026-01-05T10:00:00Z", "log.level": "error",
            "message": "unhandled error", "ecs.version": ECS_VERSION, "service.name": "api",
            "error.type": "KeyError", "error.message": "'sku'"}
    assert violations(line) == []


def test_validate_line_parses_and_reports_garbage() -> None:
    assert validate_line(json.dumps(step_line())) == []
    assert validate_line("Traceback (most recent call last):")[0].startswith("not JSON")
    assert validate_line("[1, 2]")[0].startswith("not a JSON object")


@pytest.mark.parametrize(("text", "kind"), [
    ("GET /orders/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl 404", "a JWT"),
    ("postgresql://saga:hunter2@db:5432/saga", "a password in a URL"),
    ("dsn: host=db password=hunter2 dbname=saga", "a secret as key=value"),
    ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "a bearer token"),
])
def test_secrets_are_found(text: str, kind: str) -> None:
    assert kind in secrets_in(text)


@pytest.mark.parametrize("text", [
    "GET /orders/[REDACTED-JWT] 404",
    "postgresql://saga:***@db:5432/saga",
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "http://127.0.0.1:8080/orders/a@b",
    "password=*** dbname=saga",
    "payment.requested for order 0b6a4f4e",
])
def test_redacted_or_harmless_text_is_not_a_secret(text: str) -> None:
    assert secrets_in(text) == []


def test_the_contract_is_consistent_with_the_code() -> None:
    assert {s.value for s in Status} == ORDER_STATUSES
    for action in ACTIONS:
        undeclared = [name for name in action.required if name not in FIELDS]
        assert not undeclared, f"{action.name} requires undeclared {undeclared}"
        assert action.outcomes <= {"success", "failure", "unknown"}
    assert all(name == spec.name for name, spec in FIELDS.items())


def test_the_local_runtimes_own_lines_keep_the_contract(tmp_path: Path) -> None:
    """Lines tools/runtime writes next to the functions' (.local/logs/*.ndjson)."""
    cold = ecs_event("saga.cold_start", service="inventory", outcome="success",
                     duration_s=1.25, message="cold start in 1250 ms")
    retry = ecs_event("knative.delivery.retry", service="inventory", outcome="failure",
                      level="info", message="retry 1/5 in 0.20 s (HTTP 503)",
                      cloudevents={"id": "e1", "type": "shop.order.created.v1",
                                   "source": "/saga/api", "subject": None},
                      labels={"order_id": "", "kafka_source": "inventory-orders",
                              "http_status": "503"})
    for doc in (cold, retry):
        assert violations(doc) == [], doc
    log = LogFile(tmp_path / "inventory.ndjson", "inventory")
    log.write_text("Traceback (most recent call last):")
    log.close()
    [wrapped] = (tmp_path / "inventory.ndjson").read_text().splitlines()
    assert validate_line(wrapped) == []
