"""The order-saga function: each outcome moves the order one step through the state machine;
an outcome that finds the order elsewhere (overtaken by a cancellation) changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cloudevents.http import CloudEvent
from sqlalchemy import func, select

from common import tables as t
from common.events import catalogue as c
from common.events.models import (
    CancelReason,
    OrderLine,
    PaymentCompleted,
    PaymentFailed,
    ShipmentDispatched,
    ShipmentFailed,
    StockRejected,
    StockReserved,
)
from common.order_state import Order, Status
from common.settings import Settings
from functions.order_saga.handlers import HANDLERS
from tests.functions.saga_support import (
    binary_headers,
    check_kafka_source,
    check_service,
    data_of,
    deliver,
    emitted,
    event,
    inbox_has,
    new_order,
    post_raw,
    read_order,
    step_record,
    types_of,
)
from tests.helpers import engine_of

pytestmark = pytest.mark.integration

AMOUNT = Decimal("10.00")


def _reserved(order: Order) -> CloudEvent:
    line = OrderLine(sku="SKU-X", quantity=1, unit_price=AMOUNT)
    return event(c.STOCK_RESERVED, StockReserved(order_id=order.id, items=[line]),
                 source="inventory")


def _completed(order: Order) -> CloudEvent:
    return event(c.PAYMENT_COMPLETED, PaymentCompleted(
        order_id=order.id, customer_id=order.customer_id, amount=AMOUNT), source="payments")


def _failed(order: Order, reason: str) -> CloudEvent:
    return event(c.PAYMENT_FAILED, PaymentFailed.model_validate(
        {"order_id": order.id, "customer_id": order.customer_id, "amount": AMOUNT,
         "reason": reason}), source="payments")


def _deliver_twice(settings: Settings, ev: CloudEvent) -> list[str]:
    assert deliver("order-saga", ev).status_code == 200
    assert deliver("order-saga", ev).status_code == 200
    return types_of(emitted(settings, "order-saga", ev["id"]))


def _history(settings: Settings, order_id: uuid.UUID) -> int:
    with engine_of(settings).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.order_status_history)
                                .where(t.order_status_history.c.order_id == order_id))
                   .scalar_one())


def test_stock_reserved_requests_payment_in_auto_mode(saga_env: Settings) -> None:
    order = new_order(saga_env, mode="auto")
    ev = _reserved(order)
    assert _deliver_twice(saga_env, ev) == [c.PAYMENT_REQUESTED]
    now = read_order(saga_env, order.id)
    assert now.status == Status.PAYMENT_PROCESSING
    assert now.payment_deadline is not None
    assert _history(saga_env, order.id) == 3  # CREATED, AWAITING_PAYMENT, PAYMENT_PROCESSING
    [requested] = emitted(saga_env, "order-saga", ev["id"])
    assert data_of(requested)["amount"] == "10.00"
    assert requested["traceparent"].split("-")[1] == ev["traceparent"].split("-")[1]


def test_stock_reserved_waits_for_payment_in_confirm_mode(saga_env: Settings) -> None:
    order = new_order(saga_env, mode="confirm")
    assert _deliver_twice(saga_env, _reserved(order)) == []
    now = read_order(saga_env, order.id)
    assert now.status == Status.AWAITING_PAYMENT
    assert now.payment_deadline is not None
    window = timedelta(seconds=saga_env.payment_window_s)
    assert abs(now.payment_deadline - (datetime.now(UTC) + window)) < timedelta(seconds=30)


def test_stock_rejected_cancels_out_of_stock(saga_env: Settings) -> None:
    order = new_order(saga_env)
    ev = event(c.STOCK_REJECTED, StockRejected(order_id=order.id, reason="out_of_stock"))
    assert _deliver_twice(saga_env, ev) == [c.ORDER_CANCELLED]
    now = read_order(saga_env, order.id)
    assert (now.status, now.reason) == (Status.CANCELLED, "out_of_stock")


def test_payment_completed_marks_paid_and_emits_order_paid(saga_env: Settings) -> None:
    order = new_order(saga_env, status=Status.PAYMENT_PROCESSING, address="2 Side Road")
    ev = _completed(order)
    assert _deliver_twice(saga_env, ev) == [c.ORDER_PAID]
    assert read_order(saga_env, order.id).status == Status.PAID
    [paid] = emitted(saga_env, "order-saga", ev["id"])
    assert data_of(paid)["shipping_address"] == "2 Side Road"


@pytest.mark.parametrize("reason", ["insufficient_funds", "no_account"])
def test_payment_failed_cancels_for_lack_of_funds(saga_env: Settings, reason: str) -> None:
    order = new_order(saga_env, status=Status.PAYMENT_PROCESSING)
    assert _deliver_twice(saga_env, _failed(order, reason)) == [c.ORDER_CANCELLED]
    now = read_order(saga_env, order.id)
    assert (now.status, now.reason) == (Status.CANCELLED, "insufficient_funds")


def test_shipment_dispatched_completes_the_order(saga_env: Settings) -> None:
    order = new_order(saga_env, status=Status.PAID)
    ev = event(c.SHIPMENT_DISPATCHED, ShipmentDispatched(order_id=order.id,
                                                         tracking_number="TRK-0123456789AB"))
    assert _deliver_twice(saga_env, ev) == [c.ORDER_COMPLETED]
    assert read_order(saga_env, order.id).status == Status.COMPLETED


def test_shipment_failed_cancels_and_so_compensates(saga_env: Settings) -> None:
    order = new_order(saga_env, status=Status.PAID)
    ev = event(c.SHIPMENT_FAILED, ShipmentFailed(order_id=order.id, reason="undeliverable"))
    assert _deliver_twice(saga_env, ev) == [c.ORDER_CANCELLED]
    now = read_order(saga_env, order.id)
    assert (now.status, now.reason) == (Status.CANCELLED, "shipping_failed")
    [cancelled] = emitted(saga_env, "order-saga", ev["id"])
    assert data_of(cancelled)["previous_status"] == "PAID"


@pytest.mark.parametrize(
    ("status", "reason", "make"),
    [
        # The customer cancelled before the stock reservation came back.
        (Status.CREATED, "cancelled_by_customer", _reserved),
        # The payment window ran out while the payment was in flight.
        (Status.PAYMENT_PROCESSING, "payment_timeout", _completed),
        (Status.PAYMENT_PROCESSING, "cancelled_by_customer",
         lambda o: _failed(o, "insufficient_funds")),
        (Status.PAID, "cancelled_by_customer",
         lambda o: event(c.SHIPMENT_DISPATCHED, ShipmentDispatched(
             order_id=o.id, tracking_number="TRK-0123456789AB"))),
    ],
)
def test_outcome_after_a_cancellation_is_ignored_and_logged(
    saga_env: Settings, caplog: pytest.LogCaptureFixture, status: Status, reason: CancelReason,
    make: Callable[[Order], CloudEvent],
) -> None:
    order = new_order(saga_env, status=status, reason=reason)
    ev = make(order)
    history = _history(saga_env, order.id)
    assert _deliver_twice(saga_env, ev) == []
    now = read_order(saga_env, order.id)
    assert (now.status, now.reason) == (Status.CANCELLED, reason)
    assert _history(saga_env, order.id) == history
    assert "CANCELLED" in getattr(step_record(caplog, ev["id"]), "labels.ignored")


def test_payment_refused_for_a_cancelled_order_changes_nothing(
    saga_env: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    order = new_order(saga_env, status=Status.AWAITING_PAYMENT, reason="cancelled_by_customer")
    ev = _failed(order, "order_cancelled")
    assert _deliver_twice(saga_env, ev) == []
    assert read_order(saga_env, order.id).reason == "cancelled_by_customer"
    assert "cancelled already" in getattr(step_record(caplog, ev["id"]), "labels.ignored", "")


def test_unknown_order_answers_2xx_and_is_logged(
    saga_env: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ghost = new_order(saga_env)
    ev = event(c.PAYMENT_COMPLETED, PaymentCompleted(
        order_id=uuid.uuid4(), customer_id=ghost.customer_id, amount=AMOUNT))
    assert _deliver_twice(saga_env, ev) == []
    assert getattr(step_record(caplog, ev["id"]), "labels.ignored") == "unknown order"


def test_malformed_event_answers_4xx_and_writes_nothing(saga_env: Settings) -> None:
    order = new_order(saga_env, status=Status.PAYMENT_PROCESSING)
    ev = _completed(order)
    response = post_raw("order-saga", binary_headers(ev),
                        b'{"order_id": "%s", "amount": "1.00"}' % str(order.id).encode())
    assert 400 <= response.status_code < 500
    assert response.status_code not in (404, 408, 409, 429)
    assert not inbox_has(saga_env, "order-saga", ev["id"])
    assert read_order(saga_env, order.id).status == Status.PAYMENT_PROCESSING


def test_manifests_match_the_catalogue() -> None:
    check_service(c.ORDER_SAGA)
    check_kafka_source(c.ORDER_SAGA, HANDLERS)
