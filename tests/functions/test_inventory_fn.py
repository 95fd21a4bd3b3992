"""The inventory function's release and commit steps (reserve has its own tests in
tests/integration/test_step_runtime.py), including the deliveries that overtake each other."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from cloudevents.http import CloudEvent

from common import tables as t
from common.events import catalogue as c
from common.events.models import OrderCancelled, OrderCreated, OrderLine, OrderPaid, utc_now
from common.settings import Settings
from functions.inventory.handlers import HANDLERS
from tests.functions.saga_support import (
    assert_stock_conserved,
    binary_headers,
    check_kafka_source,
    check_service,
    deliver,
    emitted,
    event,
    inbox_has,
    new_product,
    post_raw,
    row,
    rows,
    stock,
    types_of,
)

pytestmark = pytest.mark.integration


def _created(order_id: uuid.UUID, lines: dict[str, int]) -> CloudEvent:
    items = [OrderLine(sku=s, quantity=q, unit_price=Decimal("2.50")) for s, q in lines.items()]
    return event(c.ORDER_CREATED, OrderCreated(
        order_id=order_id, customer_id="alice", items=items,
        total=sum((i.unit_price * i.quantity for i in items), Decimal("0.00")),
        payment_mode="auto", created_at=utc_now()), source="api")


def _cancelled(order_id: uuid.UUID, reason: str = "cancelled_by_customer") -> CloudEvent:
    return event(c.ORDER_CANCELLED, OrderCancelled.model_validate(
        {"order_id": order_id, "customer_id": "alice", "reason": reason,
         "previous_status": "PAID"}), source="order-saga")


def _paid(order_id: uuid.UUID) -> CloudEvent:
    return event(c.ORDER_PAID, OrderPaid(order_id=order_id, customer_id="alice",
                                         amount=Decimal("5.00")), source="order-saga")


def _twice(ev: CloudEvent) -> None:
    assert deliver("inventory", ev).status_code == 200
    assert deliver("inventory", ev).status_code == 200


def _reservation(settings: Settings, order_id: uuid.UUID) -> str | None:
    r = row(settings, t.reservations, order_id=order_id)
    return None if r is None else str(r.status)


def _kinds(settings: Settings, order_id: uuid.UUID) -> list[str]:
    return sorted(r.kind for r in rows(settings, t.stock_movements, order_id=order_id))


def test_paid_order_commits_its_stock_once(saga_env: Settings) -> None:
    a, b = new_product(saga_env, 10), new_product(saga_env, 5)
    order_id = uuid.uuid4()
    _twice(_created(order_id, {a: 3, b: 2}))
    assert (stock(saga_env, a), stock(saga_env, b)) == ((10, 3), (5, 2))
    _twice(_paid(order_id))
    assert (stock(saga_env, a), stock(saga_env, b)) == ((7, 0), (3, 0))
    assert _reservation(saga_env, order_id) == "COMMITTED"
    assert _kinds(saga_env, order_id) == ["commit", "commit", "reserve", "reserve"]
    for sku in (a, b):
        assert_stock_conserved(saga_env, sku)


def test_cancel_releases_a_reservation_once(saga_env: Settings) -> None:
    sku = new_product(saga_env, 4)
    order_id = uuid.uuid4()
    _twice(_created(order_id, {sku: 4}))
    cancel = _cancelled(order_id)
    _twice(cancel)
    assert stock(saga_env, sku) == (4, 0)
    assert _reservation(saga_env, order_id) == "RELEASED"
    assert _kinds(saga_env, order_id) == ["release", "reserve"]
    assert emitted(saga_env, "inventory", cancel["id"]) == []
    # order.paid that lost the race to the cancellation commits nothing.
    _twice(_paid(order_id))
    assert stock(saga_env, sku) == (4, 0)
    assert_stock_conserved(saga_env, sku)


def test_cancel_after_commit_returns_the_goods(saga_env: Settings) -> None:
    sku = new_product(saga_env, 6)
    order_id = uuid.uuid4()
    _twice(_created(order_id, {sku: 2}))
    _twice(_paid(order_id))
    assert stock(saga_env, sku) == (4, 0)
    _twice(_cancelled(order_id, "shipping_failed"))
    _twice(_cancelled(order_id, "shipping_failed"))  # another copy: still returned once
    assert stock(saga_env, sku) == (6, 0)
    assert _reservation(saga_env, order_id) == "RELEASED"
    assert _kinds(saga_env, order_id) == ["commit", "reserve", "return"]
    assert_stock_conserved(saga_env, sku)


def test_cancel_before_created_leaves_a_tombstone_and_reserves_nothing(
    saga_env: Settings,
) -> None:
    sku = new_product(saga_env, 3)
    order_id = uuid.uuid4()
    _twice(_cancelled(order_id))
    assert _reservation(saga_env, order_id) == "RELEASED"
    created = _created(order_id, {sku: 1})
    _twice(created)
    assert stock(saga_env, sku) == (3, 0)
    assert emitted(saga_env, "inventory", created["id"]) == []  # neither reserved nor rejected
    assert _kinds(saga_env, order_id) == []
    assert_stock_conserved(saga_env, sku)


def test_cancel_of_a_rejected_order_gives_nothing_back(saga_env: Settings) -> None:
    sku = new_product(saga_env, 1)
    order_id = uuid.uuid4()
    created = _created(order_id, {sku: 2})
    _twice(created)
    assert types_of(emitted(saga_env, "inventory", created["id"])) == [c.STOCK_REJECTED]
    _twice(_cancelled(order_id, "out_of_stock"))
    _twice(_paid(order_id))
    assert _reservation(saga_env, order_id) == "REJECTED"
    assert stock(saga_env, sku) == (1, 0)
    assert_stock_conserved(saga_env, sku)


def test_paid_for_an_order_never_seen_changes_nothing(saga_env: Settings) -> None:
    order_id = uuid.uuid4()
    _twice(_paid(order_id))
    assert _reservation(saga_env, order_id) is None


def test_created_racing_cancelled_never_holds_stock(saga_env: Settings) -> None:
    sku = new_product(saga_env, 50)
    orders = [uuid.uuid4() for _ in range(8)]
    for order_id in orders:
        pair = [_created(order_id, {sku: 2}), _cancelled(order_id)]
        statuses: dict[str, int] = {}

        def send(ev: CloudEvent, into: dict[str, int] = statuses) -> None:
            into[ev["id"]] = deliver("inventory", ev).status_code

        threads = [threading.Thread(target=send, args=(ev,)) for ev in pair]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        # Whichever claims the order first wins; the other waits for it and then either
        # compensates (cancel) or finds the order decided (reserve). Both answer 2xx.
        assert [statuses[ev["id"]] for ev in pair] == [200, 200]
        assert _reservation(saga_env, order_id) == "RELEASED"
    assert stock(saga_env, sku) == (50, 0)
    assert_stock_conserved(saga_env, sku)


@pytest.mark.parametrize("event_type", [c.ORDER_PAID, c.ORDER_CANCELLED])
def test_malformed_events_answer_4xx_and_write_nothing(
    saga_env: Settings, event_type: str
) -> None:
    order_id = uuid.uuid4()
    ev = _paid(order_id) if event_type == c.ORDER_PAID else _cancelled(order_id)
    body = b'{"order_id": "%s", "reason": "bored"}' % str(order_id).encode()
    response = post_raw("inventory", binary_headers(ev), body)
    assert 400 <= response.status_code < 500
    assert response.status_code not in (404, 408, 409, 429)
    assert not inbox_has(saga_env, "inventory", ev["id"])
    assert _reservation(saga_env, order_id) is None


def test_manifests_match_the_catalogue() -> None:
    check_service(c.INVENTORY)
    check_kafka_source(c.INVENTORY, HANDLERS)
