"""The order saga's reactions (functions/order_saga/react.py) through the step runtime on
a fake unit of work: which state each event moves the order to, what that emits, and what
an event that finds the order elsewhere does (nothing, with its reason in the log line)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from common.events import catalogue as c
from common.events.models import (
    OrderLine,
    PaymentCompleted,
    PaymentFailed,
    ShipmentDispatched,
    ShipmentFailed,
    StockRejected,
    StockReserved,
)
from common.order_state import IllegalTransition, Order, Status
from common.outbox import Outbox
from common.tracing import new_trace
from functions.order_saga.handlers import HANDLERS
from tests.unit.decisions.fakes import FakeOrders, Step, an_order, event_for, step

LINES = [OrderLine(sku="MUG-001", quantity=2, unit_price=Decimal("5.00"))]


@pytest.fixture
def orders() -> dict[uuid.UUID, Order]:
    return {}


@pytest.fixture
def saga(orders: dict[uuid.UUID, Order], caplog: pytest.LogCaptureFixture) -> Step:
    return step(c.ORDER_SAGA, HANDLERS, lambda outbox: FakeOrders(orders, outbox), caplog)


def placed(orders: dict[uuid.UUID, Order], status: Status = Status.CREATED,
           **kwargs: str) -> Order:
    order = an_order(status, **kwargs)  # type: ignore[arg-type]
    orders[order.id] = order
    return order


def test_stock_reserved_in_auto_mode_requests_the_payment_at_once(
        saga: Step, orders: dict[uuid.UUID, Order]) -> None:
    order = placed(orders)
    done = saga.send(c.STOCK_RESERVED, StockReserved(order_id=order.id, items=LINES,
                                                     payment_mode="auto"))
    assert orders[order.id].status == Status.PAYMENT_PROCESSING
    assert orders[order.id].payment_deadline is not None
    assert done.types == [c.PAYMENT_REQUESTED]
    assert done.data()["amount"] == "10.00"
    assert done.label("saga_step") == "request_payment"


def test_stock_reserved_in_confirm_mode_waits_for_the_customer(
        saga: Step, orders: dict[uuid.UUID, Order]) -> None:
    order = placed(orders, mode="confirm")
    done = saga.send(c.STOCK_RESERVED, StockReserved(order_id=order.id, items=LINES,
                                                     payment_mode="confirm"))
    assert orders[order.id].status == Status.AWAITING_PAYMENT
    assert done.types == []
    assert done.label("saga_step") == "await_payment"


def test_an_event_without_the_mode_hint_follows_the_order_row(
        saga: Step, orders: dict[uuid.UUID, Order]) -> None:
    order = placed(orders, mode="auto")
    done = saga.send(c.STOCK_RESERVED, StockReserved(order_id=order.id, items=LINES))
    assert orders[order.id].status == Status.PAYMENT_PROCESSING
    assert done.types == [c.PAYMENT_REQUESTED]


def test_stock_rejected_cancels_out_of_stock(saga: Step, orders: dict[uuid.UUID, Order]
                                             ) -> None:
    order = placed(orders)
    done = saga.send(c.STOCK_REJECTED, StockRejected(order_id=order.id, reason="out_of_stock"))
    assert (orders[order.id].status, orders[order.id].reason) == (
        Status.CANCELLED, "out_of_stock")
    assert done.types == [c.ORDER_CANCELLED]
    assert done.data()["previous_status"] == "CREATED"


def test_stock_refused_for_a_cancelled_order_changes_nothing(
        saga: Step, orders: dict[uuid.UUID, Order]) -> None:
    order = placed(orders, Status.CANCELLED)
    done = saga.send(c.STOCK_REJECTED, StockRejected(order_id=order.id,
                                                     reason="order_cancelled"))
    assert orders[order.id] == order
    assert done.types == []
    assert "cancelled already" in (done.label("ignored") or "")


def test_payment_completed_pays_the_order(saga: Step, orders: dict[uuid.UUID, Order]) -> None:
    order = placed(orders, Status.PAYMENT_PROCESSING)
    done = saga.send(c.PAYMENT_COMPLETED, PaymentCompleted(
        order_id=order.id, customer_id="alice", amount=Decimal("10.00")))
    assert orders[order.id].status == Status.PAID
    assert done.types == [c.ORDER_PAID]
    assert done.data()["shipping_address"] == "1 Main Street"


@pytest.mark.parametrize(("reason", "status", "emitted"), [
    ("insufficient_funds", Status.CANCELLED, [c.ORDER_CANCELLED]),
    ("no_account", Status.CANCELLED, [c.ORDER_CANCELLED]),  # told like a lack of funds
    ("order_cancelled", Status.PAYMENT_PROCESSING, []),  # nothing was taken: ignored
])
def test_payment_failed(saga: Step, orders: dict[uuid.UUID, Order], reason: str,
                        status: Status, emitted: list[str]) -> None:
    order = placed(orders, Status.PAYMENT_PROCESSING)
    done = saga.send(c.PAYMENT_FAILED, PaymentFailed(
        order_id=order.id, customer_id="alice", amount=Decimal("10.00"),
        reason=reason))
    assert orders[order.id].status == status
    assert done.types == emitted
    if emitted:
        assert orders[order.id].reason == "insufficient_funds"


def test_a_payment_after_a_timeout_is_ignored_not_retried(
        saga: Step, orders: dict[uuid.UUID, Order]) -> None:
    order = placed(orders, Status.CANCELLED)
    done = saga.send(c.PAYMENT_COMPLETED, PaymentCompleted(
        order_id=order.id, customer_id="alice", amount=Decimal("10.00")))
    assert orders[order.id] == order
    assert done.types == []
    assert done.action == "saga.step.completed"  # 2xx: the KafkaSource moves on
    assert done.label("ignored") == "order is CANCELLED, the event expects PAYMENT_PROCESSING"
    assert done.label("order_status") == "CANCELLED"


def test_an_unknown_order_is_ignored(saga: Step) -> None:
    done = saga.send(c.SHIPMENT_DISPATCHED, ShipmentDispatched(
        order_id=uuid.uuid4(), tracking_number="TRK-1"))
    assert done.types == []
    assert done.label("ignored") == "unknown order"


def test_shipment_dispatched_completes_the_order(saga: Step, orders: dict[uuid.UUID, Order]
                                                 ) -> None:
    order = placed(orders, Status.PAID)
    done = saga.send(c.SHIPMENT_DISPATCHED, ShipmentDispatched(
        order_id=order.id, tracking_number="TRK-ABC"))
    assert orders[order.id].status == Status.COMPLETED
    assert done.types == [c.ORDER_COMPLETED]
    assert done.label("tracking_number") == "TRK-ABC"


def test_shipment_failed_cancels_the_paid_order(saga: Step, orders: dict[uuid.UUID, Order]
                                                ) -> None:
    order = placed(orders, Status.PAID)
    done = saga.send(c.SHIPMENT_FAILED, ShipmentFailed(order_id=order.id,
                                                      reason="undeliverable_address"))
    assert (orders[order.id].status, orders[order.id].reason) == (
        Status.CANCELLED, "shipping_failed")
    assert done.types == [c.ORDER_CANCELLED]
    assert done.data()["previous_status"] == "PAID"


def test_a_duplicate_delivery_is_skipped(saga: Step, orders: dict[uuid.UUID, Order]) -> None:
    order = placed(orders, Status.PAID)
    event = event_for(c.SHIPMENT_DISPATCHED, ShipmentDispatched(order_id=order.id,
                                                                tracking_number="TRK-1"))
    assert saga.deliver(event).types == [c.ORDER_COMPLETED]
    again = saga.deliver(event)
    assert (again.types, again.action) == ([], "saga.step.skipped_duplicate")
    assert orders[order.id].status == Status.COMPLETED


def test_the_fake_orders_refuse_what_the_state_machine_refuses() -> None:
    order = an_order(Status.CREATED)
    fake = FakeOrders({order.id: order}, Outbox(c.ORDER_SAGA, new_trace()))
    with pytest.raises(IllegalTransition):
        fake.advance(order.id, expected=Status.CREATED, path=[Status.PAID], actor="test")
