"""The logging contract over a whole workload on the local runtime (`./taskw up`): a few
orders through the API, then every line the functions (and the runtime) wrote to
.local/logs/*.ndjson is an ECS document that keeps the contract, and every handled event of
an order carries that order's one trace id, from the API's request to the last
notification (auto mode: no later request of the customer's starts another;
docs/observability.md, "One order, its traces").

Uses the `local_stack` fixture of the e2e suite (an object with .api_url, .logs_dir and
.settings); skipped, saying so, where that fixture does not exist yet.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import urllib3

from common.auth import CUSTOMER_ROLE, issue_token
from common.products import add_product
from common.tracing import new_trace
from tests.e2e.trail_support import ecs_problems
from tests.helpers import transaction_on
from tools.log_contract import flatten

pytestmark = pytest.mark.e2e

ORDERS = 3
DEADLINE_S = 90.0
# Who handles an auto-mode order that completes, besides the API.
FUNCTIONS = {"inventory", "order-saga", "payments", "shipping", "notifications"}


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("local_stack")
    except pytest.FixtureLookupError:
        pytest.skip("the e2e fixture local_stack (the local runtime) is not available")


def _lines(logs_dir: Path) -> list[str]:
    return [line for path in sorted(logs_dir.glob("*.ndjson"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _wait(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)  # polling a running system, bounded by the deadline
    raise AssertionError(f"timed out after {DEADLINE_S}s waiting for {what}")


def _place_orders(stack: Any) -> dict[str, str]:
    """ORDERS auto-mode orders, each with its own traceparent: order id -> trace id."""
    settings = stack.settings
    sku = f"OBS-{uuid.uuid4().hex[:8]}"
    with transaction_on(settings) as tx:
        add_product(tx, sku, "observability test", "", Decimal("1.00"), 100)
    customer = f"obs-{uuid.uuid4().hex[:8]}"
    token = issue_token(settings, customer, roles=[CUSTOMER_ROLE])
    http = urllib3.PoolManager()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    assert http.request("POST", f"{stack.api_url}/accounts", headers=auth).status == 201
    deposit = http.request("POST", f"{stack.api_url}/accounts/deposit", headers=auth,
                           body=json.dumps({"amount": "100.00"}))
    assert deposit.status == 200, deposit.data[:500]
    orders = {}
    for _ in range(ORDERS):
        trace = new_trace()
        answer = http.request(
            "POST", f"{stack.api_url}/orders",
            body=json.dumps({"items": [{"sku": sku, "quantity": 1}], "payment_mode": "auto"}),
            headers=auth | {"Idempotency-Key": uuid.uuid4().hex,
                            "traceparent": trace.traceparent})
        assert answer.status == 201, answer.data[:500]
        orders[json.loads(answer.data)["id"]] = trace.trace_id
    for order in orders:
        def done(order: str = order) -> bool:
            answer = http.request("GET", f"{stack.api_url}/orders/{order}",
                                  headers={"Authorization": f"Bearer {token}"})
            return answer.status == 200 and json.loads(answer.data)["status"] == "COMPLETED"
        _wait(done, f"order {order} to complete")
    return orders


def test_a_workload_keeps_the_contract_and_one_trace_per_order(stack: Any) -> None:
    orders = _place_orders(stack)

    def all_notified() -> list[dict[str, Any]] | None:
        docs = [flatten(json.loads(line)) for line in _lines(stack.logs_dir)]
        notified = {d.get("labels.order_id") for d in docs
                    if d.get("service.name") == "notifications"}
        return docs if set(orders) <= notified else None

    docs = _wait(all_notified, "the notifications' log lines")
    broken = ecs_problems(_lines(stack.logs_dir))
    assert not broken, json.dumps(broken, indent=1)
    for order, trace_id in orders.items():
        mine = [d for d in docs if d.get("labels.order_id") == order]
        handled = [d for d in mine if str(d.get("event.action", "")).startswith(
            ("saga.step.", "saga.compensation.", "saga.order."))]
        assert {d["service.name"] for d in handled} >= FUNCTIONS, order
        assert {d["trace.id"] for d in handled} == {trace_id}, order
        statuses = [d["labels.order_status"] for d in mine
                    if d.get("event.action") == "saga.order.status_changed"]
        assert statuses[0] == "CREATED" and statuses[-1] == "COMPLETED", statuses
        assert any(d.get("event.action") == "http.request" and d.get("trace.id") == trace_id
                   for d in docs), f"no API request line in the trace of {order}"
