"""Idempotency-Key on POST /orders: replays, a different body, and concurrent requests."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from common.events.models import OrderLine
from common.order_state import create_order
from common.outbox import Outbox
from common.settings import Settings
from common.tracing import new_trace
from functions.api.order_create import CreateOrderIn, request_fingerprint
from functions.api.sql import CLAIM_IDEMPOTENCY_KEY
from tests.functions.api_support import (
    api_client,
    bearer,
    count_orders,
    customer,
    problem,
    product,
)
from tests.helpers import engine_of, transaction_on

pytestmark = pytest.mark.integration



def test_idempotency_key_replays_and_refuses_another_body(
    client: FlaskClient, saga_env: Settings
) -> None:
    me, sku = customer(), product(saga_env)
    headers = bearer(saga_env, me) | {"Idempotency-Key": "order-1"}
    body = {"items": [{"sku": sku, "quantity": 2}]}
    first = client.post("/orders", json=body, headers=headers)
    again = client.post("/orders", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    # Another customer's identical key is their own.
    theirs = client.post("/orders", json=body, headers=bearer(saga_env, customer()) | {
        "Idempotency-Key": "order-1"})
    assert theirs.get_json()["id"] != first.get_json()["id"]
    changed = client.post("/orders", json={"items": [{"sku": sku, "quantity": 3}]},
                          headers=headers)
    assert problem(changed, 422)["errors"][0]["field"] == "Idempotency-Key"
    assert count_orders(saga_env, me) == 1
    long_key = bearer(saga_env, me) | {"Idempotency-Key": "k" * 201}
    problem(client.post("/orders", json=body, headers=long_key), 422)


def test_idempotency_key_under_two_concurrent_requests(
    client: FlaskClient, saga_env: Settings
) -> None:
    me, sku = customer(), product(saga_env)
    headers = bearer(saga_env, me) | {"Idempotency-Key": "together"}
    body = {"items": [{"sku": sku, "quantity": 1}]}
    start = threading.Barrier(2)
    results: list[Any] = []

    def post() -> None:
        own = api_client()
        start.wait()
        results.append(own.post("/orders", json=body, headers=headers))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r.status_code for r in results] == [201, 201]
    assert len({r.get_json()["id"] for r in results}) == 1
    assert count_orders(saga_env, me) == 1


def test_losing_the_idempotency_race_returns_the_winners_order(
    client: FlaskClient, saga_env: Settings
) -> None:
    """Deterministic version of the race: the winner's transaction holds the key row
    uncommitted while the request runs; the request must wait, then answer the winner's order."""
    me, sku = customer(), product(saga_env)
    body = {"items": [{"sku": sku, "quantity": 1}]}
    parsed = CreateOrderIn.model_validate(body)
    winner = uuid.uuid4()
    results: list[Any] = []
    with transaction_on(saga_env) as tx:
        create_order(tx, Outbox("api", new_trace()), order_id=winner, customer_id=me,
                     lines=[OrderLine(sku=sku, quantity=1, unit_price=Decimal("2.50"))],
                     payment_mode="auto", actor="test")
        tx.run(CLAIM_IDEMPOTENCY_KEY, {
            "customer_id": me, "key": "race", "request_hash": request_fingerprint(parsed),
            "order_id": winner})
        thread = threading.Thread(target=lambda: results.append(client.post(
            "/orders", json=body, headers=bearer(saga_env, me) | {"Idempotency-Key": "race"})))
        thread.start()
        _wait_for_lock_wait(saga_env)
    thread.join(30)
    assert results[0].status_code == 201
    assert results[0].get_json()["id"] == str(winner)
    assert count_orders(saga_env, me) == 1


def _wait_for_lock_wait(settings: Settings, timeout: float = 10.0) -> None:
    """Until some backend of this database waits on a lock (the request's key insert)."""
    deadline = time.monotonic() + timeout
    with engine_of(settings).connect() as conn:
        while time.monotonic() < deadline:
            waiting: int = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock' "
                "AND query ILIKE '%idempotency_keys%'")).scalar_one()
            if waiting:
                return
            conn.rollback()
            time.sleep(0.02)  # poll interval of a deadline-bounded wait
    raise AssertionError("the request never waited on the idempotency key")

