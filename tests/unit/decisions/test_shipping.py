"""The shipping's decisions (functions/shipping/dispatch.py) through the step runtime on a
fake unit of work: one shipment per order, decided by whoever claims it first."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from common.events import catalogue as c
from common.events.models import OrderCancelled, OrderPaid
from functions.shipping.handlers import HANDLERS
from tests.unit.decisions.fakes import FakeShipments, Step, step


@pytest.fixture
def shipments() -> FakeShipments:
    return FakeShipments()


@pytest.fixture
def shipping(shipments: FakeShipments, caplog: pytest.LogCaptureFixture) -> Step:
    return step(c.SHIPPING, HANDLERS, shipments, caplog)


def paid(order_id: uuid.UUID, address: str = "1 Main Street") -> OrderPaid:
    return OrderPaid(order_id=order_id, customer_id="alice", amount=Decimal("3.00"),
                     shipping_address=address)


def cancelled(order_id: uuid.UUID) -> OrderCancelled:
    return OrderCancelled(order_id=order_id, customer_id="alice",
                          reason="cancelled_by_customer", previous_status="PAID")


def test_a_paid_order_is_dispatched_with_a_tracking_number(
        shipping: Step, shipments: FakeShipments) -> None:
    order_id = uuid.uuid4()
    done = shipping.send(c.ORDER_PAID, paid(order_id))
    assert done.types == [c.SHIPMENT_DISPATCHED]
    tracking = done.data()["tracking_number"]
    assert tracking.startswith("TRK-") and len(tracking) == 16
    assert shipments.rows[order_id] == ("DISPATCHED", tracking, None)


def test_an_undeliverable_address_fails_the_shipment(shipping: Step, shipments: FakeShipments
                                                     ) -> None:
    order_id = uuid.uuid4()
    done = shipping.send(c.ORDER_PAID, paid(order_id, "Nowhere (UNDELIVERABLE)"))
    assert done.types == [c.SHIPMENT_FAILED]
    assert done.data()["reason"] == "undeliverable_address"


def test_a_second_order_paid_ships_nothing_more(shipping: Step) -> None:
    order_id = uuid.uuid4()
    shipping.send(c.ORDER_PAID, paid(order_id))
    again = shipping.send(c.ORDER_PAID, paid(order_id))
    assert again.types == []
    assert (again.label("saga_step"), again.label("shipment")) == (
        "ship.already_decided", "DISPATCHED")


def test_a_cancellation_first_means_never_ship(shipping: Step, shipments: FakeShipments
                                               ) -> None:
    order_id = uuid.uuid4()
    assert shipping.send(c.ORDER_CANCELLED, cancelled(order_id)).label(
        "saga_step") == "ship.tombstone"
    late = shipping.send(c.ORDER_PAID, paid(order_id))
    assert late.types == []
    assert late.label("shipment") == "FAILED:order_cancelled"


def test_a_cancellation_after_dispatch_is_flagged(shipping: Step) -> None:
    order_id = uuid.uuid4()
    shipping.send(c.ORDER_PAID, paid(order_id))
    done = shipping.send(c.ORDER_CANCELLED, cancelled(order_id))
    assert done.label("warning") == "cancelled after dispatch"
