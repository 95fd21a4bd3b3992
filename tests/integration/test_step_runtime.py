"""The step contract (docs/architecture.md) on the inventory function, through functions-framework's
test client, a real PostgreSQL and a real broker."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from common import tables as t
from common.events import catalogue as c
from common.events.models import OrderCreated, OrderLine, utc_now
from common.products import add_product
from common.settings import Settings
from tests.helpers import (
    engine_of,
    event_function_client,
    flush_marks,
    make_event,
    post_event,
    read_topic,
    transaction_on,
)

pytestmark = pytest.mark.integration


def _client() -> Any:
    return event_function_client("inventory")


def _product(settings: Settings, on_hand: int) -> str:
    sku = f"T-{uuid.uuid4().hex[:10]}"
    with transaction_on(settings) as tx:
        add_product(tx, sku, "test product", "", Decimal("2.50"), on_hand)
    return sku


def _order_created(sku: str, quantity: int = 1) -> tuple[uuid.UUID, Any]:
    order_id = uuid.uuid4()
    data = OrderCreated(
        order_id=order_id, customer_id="alice", total=Decimal("2.50") * quantity,
        items=[OrderLine(sku=sku, quantity=quantity, unit_price=Decimal("2.50"))],
        payment_mode="auto", created_at=utc_now(),
    )
    return order_id, make_event(c.ORDER_CREATED, data, source="api", order_id=order_id)


def _stock(settings: Settings, sku: str) -> tuple[int, int]:
    with engine_of(settings).connect() as conn:
        row = conn.execute(
            select(t.stock.c.on_hand, t.stock.c.reserved).where(t.stock.c.sku == sku)
        ).one()
    return row.on_hand, row.reserved


def _outbox(settings: Settings, caused_by: str) -> list[Any]:
    flush_marks()  # published rows are marked in the background (outbox_marks)
    with engine_of(settings).connect() as conn:
        return list(conn.execute(
            select(t.outbox).where(t.outbox.c.caused_by == caused_by)
        ).all())


def test_duplicate_delivery_applies_effects_once_and_answers_2xx(saga_env: Settings) -> None:
    sku = _product(saga_env, on_hand=5)
    _, event = _order_created(sku, quantity=2)
    client = _client()
    assert post_event(client, event).status_code == 200
    assert post_event(client, event).status_code == 200
    assert _stock(saga_env, sku) == (5, 2)
    assert len(_outbox(saga_env, event["id"])) == 1


def test_outbox_rows_are_published_after_commit_and_marked(saga_env: Settings) -> None:
    sku = _product(saga_env, on_hand=1)
    order_id, event = _order_created(sku)
    assert post_event(_client(), event).status_code == 200
    [row] = _outbox(saga_env, event["id"])
    assert row.event_type == c.STOCK_RESERVED
    assert row.published_at is not None
    published = read_topic(saga_env, c.STOCK_RESERVED, lambda e: e["id"] == str(row.id))
    assert published["partitionkey"] == str(order_id)
    # The trace continues: same trace id as the incoming event, a new span.
    assert published["traceparent"].split("-")[1] == event["traceparent"].split("-")[1]
    assert published["traceparent"] != event["traceparent"]


def test_broker_unreachable_commits_effects_and_leaves_rows_for_the_relay(
    saga_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sku = _product(saga_env, on_hand=3)
    _, event = _order_created(sku)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # discard port: nothing there
    monkeypatch.setenv("SAGA_OUTBOX_PUBLISH_TIMEOUT_S", "0.5")
    response = post_event(_client(), event)
    assert response.status_code == 200
    assert _stock(saga_env, sku) == (3, 1)
    [row] = _outbox(saga_env, event["id"])
    assert row.published_at is None

    # With the broker back, a duplicate delivery publishes what its first delivery left.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", saga_env.kafka_bootstrap_servers or "")
    monkeypatch.delenv("SAGA_OUTBOX_PUBLISH_TIMEOUT_S")
    assert post_event(_client(), event).status_code == 200
    [row] = _outbox(saga_env, event["id"])
    assert row.published_at is not None
    assert _stock(saga_env, sku) == (3, 1)


@pytest.mark.parametrize(("orders", "units"), [(2, 1), (8, 3)])
def test_concurrent_orders_reserve_exactly_the_units_there_are(
    saga_env: Settings, orders: int, units: int
) -> None:
    sku = _product(saga_env, on_hand=units)
    events = [_order_created(sku)[1] for _ in range(orders)]
    statuses: list[int] = []
    barrier = threading.Barrier(len(events))

    def deliver(event: Any) -> None:
        client = _client()
        barrier.wait()
        statuses.append(post_event(client, event).status_code)

    threads = [threading.Thread(target=deliver, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * orders
    assert _stock(saga_env, sku) == (units, units)  # all reserved, never more
    emitted = sorted(r.event_type for e in events for r in _outbox(saga_env, e["id"]))
    assert emitted.count(c.STOCK_RESERVED) == units
    assert emitted.count(c.STOCK_REJECTED) == orders - units


def test_database_outage_answers_5xx_so_knative_retries(
    saga_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sku = _product(saga_env, on_hand=1)
    _, event = _order_created(sku)
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:9/none")
    response = post_event(_client(), event)
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"


MalformedCase = Callable[[Any], tuple[dict[str, str], bytes]]


def _valid_headers(event: Any) -> dict[str, str]:
    from cloudevents.conversion import to_binary

    headers, _ = to_binary(event)
    return dict(headers)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing id", 400),
        ("wrong specversion", 400),
        ("invalid json", 400),
        ("data violates model", 422),
        ("unknown type", 400),
        ("oversize body", 413),
    ],
)
def test_malformed_events_answer_4xx_and_write_nothing(
    saga_env: Settings, case: str, expected: int
) -> None:
    sku = _product(saga_env, on_hand=1)
    _, event = _order_created(sku)
    headers = _valid_headers(event)
    body = b'{"order_id": "%s"}' % str(uuid.uuid4()).encode()
    if case == "missing id":
        headers.pop("ce-id")
    elif case == "wrong specversion":
        headers["ce-specversion"] = "0.1"
    elif case == "invalid json":
        body = b"{not json"
    elif case == "unknown type":
        headers["ce-type"] = "shop.nothing.happened.v1"
    elif case == "oversize body":
        body = b'{"pad": "' + b"x" * 300_000 + b'"}'
    response = _client().post("/", headers=headers, data=body)
    assert response.status_code == expected, response.get_data(as_text=True)
    assert 400 <= response.status_code < 500
    assert response.status_code not in (404, 408, 409, 429)  # those Knative would retry
    assert _stock(saga_env, sku) == (1, 0)
    with engine_of(saga_env).connect() as conn:
        seen = conn.execute(
            select(t.inbox).where(t.inbox.c.event_id == headers.get("ce-id", "-"))
        ).first()
    assert seen is None
