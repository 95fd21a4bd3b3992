"""Real log lines: drive the functions through functions-framework's test clients against
the test database and broker, capture what they print, and hold every line to the
contract: JSON, the fields its action requires, and no secret, ever.

`drive_functions` is also the source of real lines for test_elk_queries.py.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from common.events import catalogue as c
from common.events.models import OrderCancelled, OrderCreated, OrderLine, StockReserved, utc_now
from common.settings import Settings
from common.step import StepRuntime
from common.tracing import TraceContext, new_trace
from tests.conftest import TEST_JWT_SECRET
from tests.contract import dashboard_fields
from tests.functions.api_support import bearer, product
from tests.helpers import event_function_client, function_client, make_event, post_event
from tools import REPO_ROOT
from tools.log_contract import FIELDS, flatten, secrets_in, validate_line

pytestmark = pytest.mark.integration

# Secrets the test puts where a careless log line would print them.
DB_PASSWORD = "db-pw-" + uuid.uuid4().hex[:12]
LOGIN_PASSWORD = "login-pw-" + uuid.uuid4().hex[:12]
FORGED_TOKEN = "forged" + uuid.uuid4().hex * 2


@dataclass
class Driven:
    """What drive_functions did, for the assertions on its lines."""

    lines: list[str] = field(default_factory=list)
    api_order: str = ""
    api_trace: str = ""
    cancelled_order: str = ""  # placed in cancelled_trace, cancelled in cancel_trace
    cancelled_trace: str = ""
    cancel_trace: str = ""
    inventory_order: str = ""
    jwt: str = ""
    secrets: list[str] = field(default_factory=list)


def _app(function: str) -> Any:
    """A fresh test client: importing main.py again points ECS logging at the current
    sys.stdout, which the caller is capturing."""
    if function != "api":
        return event_function_client(function)
    return function_client("api", str(REPO_ROOT / "functions" / "api" / "main.py"), "http",
                           asgi=False)


def _order_created(sku: str, order_id: uuid.UUID) -> CloudEvent:
    data = OrderCreated(order_id=order_id, customer_id="alice", total=Decimal("2.50"),
                        items=[OrderLine(sku=sku, quantity=1, unit_price=Decimal("2.50"))],
                        payment_mode="auto", created_at=utc_now())
    return make_event(c.ORDER_CREATED, data, source="api", order_id=order_id)


def _drive_inventory(settings: Settings, monkeypatch: pytest.MonkeyPatch, run: Driven) -> None:
    inventory = _app("inventory")
    sku = product(settings, on_hand=5)
    order_id = uuid.uuid4()
    run.inventory_order = str(order_id)
    created = _order_created(sku, order_id)
    assert post_event(inventory, created).status_code == 200  # saga.step.completed
    assert post_event(inventory, created).status_code == 200  # saga.step.skipped_duplicate
    bad = CloudEvent(dict(created.get_attributes()) | {"id": str(uuid.uuid4())},
                     {"order_id": str(order_id), "items": "none"})
    assert post_event(inventory, bad).status_code == 422  # saga.step.failed
    cancelled = make_event(c.ORDER_CANCELLED, OrderCancelled(
        order_id=order_id, customer_id="alice", reason="cancelled_by_customer",
        previous_status="CREATED"), source="api", order_id=order_id)
    assert post_event(inventory, cancelled).status_code == 200  # a compensation

    # A bug whose message quotes a connection string: the lines must not.
    def leaky(ctx: Any, data: Any) -> None:
        raise RuntimeError(f"cannot reach postgresql://saga:{DB_PASSWORD}@db:5432/saga "
                           f"(password={DB_PASSWORD})")

    with monkeypatch.context() as patch:
        patch.setattr(StepRuntime, "_parse", lambda self, event: (leaky, None))
        assert post_event(inventory, _order_created(sku, uuid.uuid4())).status_code == 500
    # A database outage, with a password in DATABASE_URL: saga.step.retried (503). The
    # process reads its settings as it starts: a new one.
    with monkeypatch.context() as patch:
        patch.setenv("DATABASE_URL", f"postgresql://saga:{DB_PASSWORD}@127.0.0.1:9/none")
        outage = _app("inventory")
    assert post_event(outage, _order_created(sku, uuid.uuid4())).status_code == 503


def _drive_api(settings: Settings, run: Driven) -> None:
    api = _app("api")
    sku = product(settings, on_hand=5)
    trace = new_trace()
    headers = bearer(settings, f"cust-{uuid.uuid4().hex[:8]}") | {
        "traceparent": trace.traceparent, "Idempotency-Key": uuid.uuid4().hex}
    answer = api.post("/orders", json={"items": [{"sku": sku, "quantity": 1}],
                                       "payment_mode": "auto"}, headers=headers)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    run.api_order, run.api_trace = answer.get_json()["id"], trace.trace_id
    run.jwt = headers["Authorization"].split()[1]
    # A second order, cancelled by its customer: a status change with a reason, by a
    # request in a trace of its own.
    placed, cancel = new_trace(), new_trace()
    second = api.post("/orders", json={"items": [{"sku": sku, "quantity": 1}],
                                       "payment_mode": "confirm"},
                      headers=headers | {"Idempotency-Key": uuid.uuid4().hex,
                                         "traceparent": placed.traceparent}
                      ).get_json()["id"]
    assert api.put(f"/orders/{second}", json={"status": "CANCELLED"},
                   headers=headers | {"traceparent": cancel.traceparent}).status_code == 200
    run.cancelled_order, run.cancelled_trace = second, placed.trace_id
    run.cancel_trace = cancel.trace_id
    # A token where a path segment should be; a forged bearer; a password in a body.
    assert api.get(f"/orders/{run.jwt}", headers=headers).status_code in (404, 422)
    assert api.get("/orders", headers={"Authorization": f"Bearer {FORGED_TOKEN}"}
                   ).status_code == 401
    username = f"u{uuid.uuid4().hex[:10]}"
    assert api.post("/auth/register", json={"username": username,
                                            "password": LOGIN_PASSWORD}).status_code == 201
    assert api.post("/auth/token", json={"username": username,
                                         "password": LOGIN_PASSWORD + "x"}).status_code == 401


def _drive_saga_dlq_and_timeouts(run: Driven) -> None:
    # order-saga continues the API order's trace: stock reserved -> payment requested.
    order_id = uuid.UUID(run.api_order)
    line = OrderLine(sku="T-any", quantity=1, unit_price=Decimal("2.50"))
    reserved = make_event(c.STOCK_RESERVED, StockReserved(order_id=order_id, items=[line]),
                          source="inventory", order_id=order_id,
                          trace=TraceContext(run.api_trace, "1" * 16))
    assert post_event(_app("order-saga"), reserved).status_code == 200
    dead = CloudEvent({"id": str(uuid.uuid4()), "source": "/saga/api",
                       "type": c.ORDER_CREATED, "subject": run.inventory_order,
                       "partitionkey": run.inventory_order,
                       "knativeerrordest": "http://inventory.saga.svc.cluster.local",
                       "knativeerrorcode": "422"}, {"order_id": run.inventory_order})
    assert post_event(_app("dlq"), dead).status_code == 200
    tick = CloudEvent({"id": str(uuid.uuid4()), "type": "dev.knative.sources.ping",
                       "source": "/apis/v1/namespaces/saga/pingsources/timeouts"}, {})
    assert post_event(_app("timeouts"), tick).status_code == 200


def drive_functions(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> Driven:
    """Every kind of line the functions write, captured from stdout."""
    run = Driven(secrets=[DB_PASSWORD, LOGIN_PASSWORD, FORGED_TOKEN, TEST_JWT_SECRET])
    capsys.readouterr()
    with _restored_root_logging():
        _drive_inventory(settings, monkeypatch, run)
        _drive_api(settings, run)
        _drive_saga_dlq_and_timeouts(run)
        logging.getLogger().handlers[-1].flush()
        run.lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    run.secrets.append(run.jwt)
    return run


@contextmanager
def _restored_root_logging() -> Iterator[None]:
    """Put the root logger's handlers back afterwards: the clients made here bound ECS
    logging to this test's captured stdout, which is closed once the test ends."""
    handlers = list(logging.getLogger().handlers)
    try:
        yield
    finally:
        logging.getLogger().handlers[:] = handlers


@pytest.fixture(scope="module")
def _runs() -> dict[str, Driven]:
    return {}


@pytest.fixture
def driven(_runs: dict[str, Driven], saga_env: Settings, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> Iterator[Driven]:
    """The functions are driven once per module; each test reads the same lines."""
    if "run" not in _runs:
        _runs["run"] = drive_functions(saga_env, monkeypatch, capsys)
    yield _runs["run"]


def _docs(run: Driven) -> list[dict[str, Any]]:
    return [flatten(json.loads(line)) for line in run.lines]


def test_every_line_is_json_and_keeps_the_contract(driven: Driven) -> None:
    assert len(driven.lines) >= 15
    broken = {line[:160]: problems for line in driven.lines
              if (problems := validate_line(line))}
    assert not broken, json.dumps(broken, indent=1)


def test_no_line_contains_a_secret(driven: Driven) -> None:
    for line in driven.lines:
        assert not [s for s in driven.secrets if s in line], line
        assert not secrets_in(line), line


def test_every_kind_of_line_was_written(driven: Driven) -> None:
    actions = {d.get("event.action") for d in _docs(driven)}
    expected = {"saga.step.completed", "saga.step.skipped_duplicate", "saga.step.failed",
                "saga.step.retried", "saga.order.status_changed", "saga.dlq", "http.request",
                "saga.timeouts.ran"}
    assert expected <= actions, f"missing: {expected - actions}"
    assert any(str(a).startswith("saga.compensation.") for a in actions), actions


def test_one_order_is_one_trace_from_the_api_to_the_saga(driven: Driven) -> None:
    docs = _docs(driven)
    order_lines = [d for d in docs if d.get("labels.order_id") == driven.api_order]
    services = {d["service.name"] for d in order_lines}
    assert {"api", "order-saga"} <= services, services
    assert {d["trace.id"] for d in order_lines} == {driven.api_trace}
    statuses = [d["labels.order_status"] for d in order_lines
                if d.get("event.action") == "saga.order.status_changed"]
    assert statuses == ["CREATED", "AWAITING_PAYMENT", "PAYMENT_PROCESSING"]
    posts = [d for d in docs if d.get("event.action") == "http.request"
             and d.get("http.request.method") == "POST" and d.get("url.path") == "/orders"]
    assert [p["trace.id"] for p in posts].count(driven.api_trace) == 1


def test_a_customers_later_request_is_its_own_trace_linked_to_the_orders(
        driven: Driven) -> None:
    """docs/observability.md, "One order, its traces": the cancellation is the request's
    trace; its request line names the order and links to the span that created it."""
    docs = _docs(driven)
    requests = {(d["http.request.method"], d["url.path"]): d for d in docs
                if d.get("event.action") == "http.request"
                and d.get("labels.order_id") == driven.cancelled_order}
    placed = requests[("POST", "/orders")]
    cancel = requests[("PUT", f"/orders/{driven.cancelled_order}")]
    assert placed["trace.id"] == driven.cancelled_trace and "span.links.trace.id" not in placed
    assert cancel["trace.id"] == driven.cancel_trace
    assert cancel["span.links.trace.id"] == [driven.cancelled_trace]
    assert cancel["span.links.span.id"] == [placed["span.id"]]
    changes = {d["labels.order_status"]: d for d in docs
               if d.get("labels.order_id") == driven.cancelled_order
               and d.get("event.action") == "saga.order.status_changed"}
    assert changes["CREATED"]["trace.id"] == driven.cancelled_trace
    assert (changes["CANCELLED"]["trace.id"], changes["CANCELLED"]["span.id"]) == (
        cancel["trace.id"], cancel["span.id"])


def test_every_field_a_dashboard_uses_is_written_by_a_function(driven: Driven) -> None:
    """Declared is not enough: the functions' real lines carry every field the dashboards
    read (runtime-only fields such as the cold start's come from the local runtime)."""
    written = {name for d in _docs(driven) for name in d}
    needed = {f for f in dashboard_fields() if FIELDS[f].origin == "function"}
    assert needed <= written, f"no real line writes {sorted(needed - written)}"
