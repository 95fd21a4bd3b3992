"""`saga status` and `saga trace` on the running stack (`local_stack`), driven through the
CLI in-process with the stack's environment; and the helpers the other operator tests
(test_replay.py, test_runtime_kill.py) share: running the CLI, a workload covering every
way an order ends, waiting until the system is quiet."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, pool, text

from common.products import add_product
from tests.e2e.conftest import LocalStack
from tests.helpers import run_saga, transaction_on, wait_for
from tools import REPO_ROOT
from tools.apiclient import ApiClient, ApiError
from tools.log_contract import flatten
from tools.manifests.loader import load_project_manifests

pytestmark = pytest.mark.e2e

TERMINAL = ("COMPLETED", "CANCELLED")
MANIFESTS = load_project_manifests(REPO_ROOT)


@pytest.fixture
def ops(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The stack, with this process's environment naming its database, broker and state
    dir, as an operator's shell would."""
    settings = local_stack.settings
    assert settings.database_url is not None and settings.kafka_bootstrap_servers
    monkeypatch.setenv("DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
    monkeypatch.setenv("SAGA_KAFKA_BROKER_KIND", settings.kafka_broker_kind)
    monkeypatch.setenv("SAGA_STATE_DIR", str(local_stack.state_dir))
    yield local_stack




def engine(stack: LocalStack) -> Engine:
    return create_engine(stack.settings.sqlalchemy_url(), poolclass=pool.NullPool)


def rows(stack: LocalStack, sql: str, **params: Any) -> list[Any]:
    db = engine(stack)
    try:
        with db.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        db.dispose()


def backlog(stack: LocalStack) -> dict[str, int]:
    """Lag per source, and the outbox rows not yet published."""
    code, out, err = run_saga("status", "--json")
    assert code == 0, err
    doc = json.loads(out)
    return {s["name"]: sum(p["lag"] for p in s["partitions"]) for s in doc["sources"]} | {
        "outbox": doc["outbox"]["unpublished"]}


def wait_quiet(stack: LocalStack, timeout: float = 90) -> None:
    """Every source has delivered everything (lag 0 everywhere) and every outbox row is
    published (the relay publishes a row a killed function left within a minute)."""
    wait_for(lambda: not any(backlog(stack).values()), timeout=timeout, interval=0.3,
             message="every KafkaSource's lag and the outbox backlog to reach zero")


def settle(stack: LocalStack) -> None:
    """End every order still open (other tests leave some waiting for payment), so the
    payment-window timeout cannot change data while a test compares it."""
    for order_id, customer in rows(stack, "SELECT id, customer_id FROM orders.orders WHERE "
                                   "status NOT IN ('COMPLETED', 'CANCELLED')"):
        with contextlib.suppress(ApiError):  # it may be moving on its own: then wait
            stack.client(customer).cancel(str(order_id))
    wait_for(lambda: not rows(stack, "SELECT 1 FROM orders.orders WHERE status NOT IN "
                              "('COMPLETED', 'CANCELLED')"), timeout=60, interval=0.2,
             message="every order to end")
    wait_quiet(stack)


def wait_terminal(api: ApiClient, order_ids: list[str]) -> dict[str, dict[str, Any]]:
    def ended() -> dict[str, dict[str, Any]] | None:
        orders = {o: api.order(o) for o in order_ids}
        return orders if all(o["status"] in TERMINAL for o in orders.values()) else None
    return wait_for(ended, timeout=60, interval=0.2, message="the orders to end")


def workload(stack: LocalStack) -> dict[str, str]:
    """Orders that end every way: completed, out of stock, insufficient funds, cancelled by
    the customer, shipping failed (refund and stock returned). Order id -> how it ended."""
    sku = f"OPS-{uuid.uuid4().hex[:8]}"
    db = engine(stack)
    try:
        with transaction_on(stack.settings) as tx:
            add_product(tx, sku, "ops test", "", Decimal("5.00"), 10)
    finally:
        db.dispose()
    rich = stack.client(f"ops-rich-{uuid.uuid4().hex[:6]}")
    rich.create_account()
    rich.deposit("100.00")
    poor = stack.client(f"ops-poor-{uuid.uuid4().hex[:6]}")
    poor.create_account()
    placed = [rich.place_order([(sku, 1)]), rich.place_order([(sku, 2)]),
              rich.place_order([(sku, 50)]), poor.place_order([(sku, 1)]),
              rich.place_order([(sku, 1)], shipping_address="1 Nowhere Lane, UNDELIVERABLE")]
    waiting = rich.place_order([(sku, 1)], payment_mode="confirm")
    wait_for(lambda: rich.order(waiting["id"])["status"] == "AWAITING_PAYMENT", timeout=30,
             message="the confirm-mode order to wait for payment")
    rich.cancel(waiting["id"])
    ids = [o["id"] for o in [*placed, waiting]]
    ended = wait_terminal(rich, ids[:3] + ids[4:]) | wait_terminal(poor, [ids[3]])
    return {o: ended[o].get("reason") or ended[o]["status"] for o in ids}


def log_docs(stack: LocalStack, function: str, since: datetime,
             contains: tuple[str, ...] = ("",)) -> list[dict[str, Any]]:
    """`function`'s log lines since `since`; only those containing one of `contains` are
    parsed (the files hold every line of the session)."""
    path = stack.logs_dir / f"{function}.ndjson"
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        if line.startswith("{") and any(text in line for text in contains):
            doc = flatten(json.loads(line))
            stamp = datetime.fromisoformat(str(doc.get("@timestamp")))
            if stamp >= since:
                docs.append(doc)
    return docs


def test_status_json_has_its_stable_shape(ops: LocalStack) -> None:
    code, out, err = run_saga("status", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"functions", "sources", "outbox", "dead_letters", "tables"}
    assert {f["name"] for f in doc["functions"]} == set(MANIFESTS.functions)
    for function in doc["functions"]:
        assert set(function) == {"name", "state", "port", "last_cold_start_ms"}
        assert function["state"] in ("running", "scaled_to_zero", "not_started")
    api = next(f for f in doc["functions"] if f["name"] == "api")
    assert api["state"] == "running" and ops.api_url.endswith(f":{api['port']}")
    assert [(s["name"], s["consumer_group"]) for s in doc["sources"]] == sorted(
        (s.name, s.consumer_group) for s in MANIFESTS.kafka_sources.values())
    for source in doc["sources"]:
        spec = MANIFESTS.kafka_sources[source["name"]]
        assert {p["topic"] for p in source["partitions"]} == set(spec.topics)
        for partition in source["partitions"]:
            assert set(partition) == {"topic", "partition", "offset", "end", "lag"}
            assert partition["lag"] >= 0 and partition["end"] >= 0
    assert isinstance(doc["outbox"]["unpublished"], int)
    assert isinstance(doc["dead_letters"], int)
    # The tables that grow with traffic: what the retention sweep keeps bounded.
    tables = {t["table"]: t for t in doc["tables"]}
    assert set(tables) == {"messaging.inbox", "messaging.outbox", "messaging.dead_letters",
                           "orders.idempotency_keys"}
    for row in tables.values():
        assert set(row) == {"table", "rows", "rows_estimated", "bytes", "oldest"}
        assert row["rows"] >= 0 and row["bytes"] > 0
    oldest = tables["messaging.inbox"]["oldest"]
    assert oldest is None or datetime.fromisoformat(oldest) <= datetime.now(UTC)
    code, table, _ = run_saga("status")
    assert code == 0 and "functions:" in table and "group saga-inventory" in table
    assert "messaging.inbox" in table and "oldest row" in table


def test_trace_shows_an_orders_whole_saga(ops: LocalStack) -> None:
    customer = f"trace-{uuid.uuid4().hex[:6]}"
    api = ops.client(customer)
    api.create_account()
    api.deposit("50.00")
    order = api.place_order([("MUG-001", 1)])["id"]
    wait_terminal(api, [order])
    steps = ("inventory", "order-saga", "payments", "shipping", "notifications")

    def traced() -> list[dict[str, Any]] | None:
        code, out, err = run_saga("trace", order, "--json")
        assert code == 0, err
        entries: list[dict[str, Any]] = json.loads(out)
        handled = {e["function"] for e in entries if e["what"] == "saga.step.completed"}
        return entries if handled >= set(steps) else None

    entries = wait_for(traced, timeout=20, interval=0.3, message="every step in the logs")
    statuses = [e["what"].split(" -> ")[1] for e in entries if e["origin"] == "history"]
    assert statuses == ["CREATED", "AWAITING_PAYMENT", "PAYMENT_PROCESSING", "PAID",
                        "COMPLETED"]
    emitted = {e["event_type"] for e in entries if e["origin"] == "outbox"}
    assert {"shop.order.created.v1", "shop.payment.completed.v1",
            "shop.order.completed.v1"} <= emitted
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    assert any(e["what"] == "http.request" and "POST /orders" in e["detail"] for e in entries)
    assert all(e["duration_ms"] is not None for e in entries
               if e["what"] == "saga.step.completed")
    code, table, _ = run_saga("trace", order)
    assert code == 0 and f"order {order}" in table and "COMPLETED" in table
    code, _, err = run_saga("trace", "not-an-order")
    assert code == 2 and "is not an order id" in err
