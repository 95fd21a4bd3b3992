"""The inventory's decisions (functions/inventory) through the step runtime on a fake unit
of work: all lines or none, never more than there is, and the compensations (release,
return, the tombstone that makes a late order.created reserve nothing)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from common.events import catalogue as c
from common.events.models import OrderCancelled, OrderCreated, OrderLine, OrderPaid, utc_now
from functions.inventory.handlers import HANDLERS
from tests.unit.decisions.fakes import FakeStock, Step, step


@pytest.fixture
def stock() -> FakeStock:
    return FakeStock(stock={"MUG": [5, 0], "CAP": [1, 0]})


@pytest.fixture
def inventory(stock: FakeStock, caplog: pytest.LogCaptureFixture) -> Step:
    return step(c.INVENTORY, HANDLERS, stock, caplog)


def created(order_id: uuid.UUID, *lines: tuple[str, int]) -> OrderCreated:
    items = [OrderLine(sku=sku, quantity=qty, unit_price=Decimal("1.00")) for sku, qty in lines]
    return OrderCreated(order_id=order_id, customer_id="alice", items=items,
                        total=Decimal(sum(q for _, q in lines)), payment_mode="confirm",
                        created_at=utc_now())


def cancelled(order_id: uuid.UUID) -> OrderCancelled:
    return OrderCancelled(order_id=order_id, customer_id="alice",
                          reason="cancelled_by_customer", previous_status="CREATED")


def paid(order_id: uuid.UUID) -> OrderPaid:
    return OrderPaid(order_id=order_id, customer_id="alice", amount=Decimal("3.00"))


def test_every_line_is_reserved(inventory: Step, stock: FakeStock) -> None:
    order_id = uuid.uuid4()
    done = inventory.send(c.ORDER_CREATED, created(order_id, ("MUG", 2), ("CAP", 1), ("MUG", 1)))
    assert done.types == [c.STOCK_RESERVED]
    assert done.data()["payment_mode"] == "confirm"
    assert stock.stock == {"MUG": [5, 3], "CAP": [1, 1]}
    assert stock.reservations[order_id] == "RESERVED"
    assert done.label("outcome") == "reserved"


def test_one_missing_line_reserves_nothing(inventory: Step, stock: FakeStock) -> None:
    order_id = uuid.uuid4()
    done = inventory.send(c.ORDER_CREATED, created(order_id, ("MUG", 2), ("CAP", 2), ("HAT", 1)))
    assert done.types == [c.STOCK_REJECTED]
    assert done.data()["missing"] == [
        {"sku": "CAP", "requested": 2, "available": 1},
        {"sku": "HAT", "requested": 1, "available": 0}]
    assert stock.stock == {"MUG": [5, 0], "CAP": [1, 0]}
    assert stock.reservations[order_id] == "REJECTED"


def test_the_last_unit_goes_to_one_order(inventory: Step, stock: FakeStock) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert inventory.send(c.ORDER_CREATED, created(first, ("CAP", 1))).types == [
        c.STOCK_RESERVED]
    assert inventory.send(c.ORDER_CREATED, created(second, ("CAP", 1))).types == [
        c.STOCK_REJECTED]
    assert stock.stock["CAP"] == [1, 1]


def test_paid_commits_and_a_later_cancellation_returns_the_goods(
        inventory: Step, stock: FakeStock) -> None:
    order_id = uuid.uuid4()
    inventory.send(c.ORDER_CREATED, created(order_id, ("MUG", 2)))
    assert inventory.send(c.ORDER_PAID, paid(order_id)).label("saga_step") == "commit"
    assert stock.stock["MUG"] == [3, 0]
    done = inventory.send(c.ORDER_CANCELLED, cancelled(order_id))
    assert done.action == "saga.compensation.returned"
    assert stock.stock["MUG"] == [5, 0]
    assert stock.reservations[order_id] == "RELEASED"


def test_a_cancellation_releases_what_is_reserved_once(inventory: Step, stock: FakeStock
                                                       ) -> None:
    order_id = uuid.uuid4()
    inventory.send(c.ORDER_CREATED, created(order_id, ("MUG", 2)))
    done = inventory.send(c.ORDER_CANCELLED, cancelled(order_id))
    assert done.action == "saga.compensation.released"
    assert stock.stock["MUG"] == [5, 0]
    again = inventory.send(c.ORDER_CANCELLED, cancelled(order_id))
    assert again.label("saga_step") == "release.nothing_held"
    assert stock.stock["MUG"] == [5, 0]
    # order.paid after the release (a lost race) commits nothing.
    late = inventory.send(c.ORDER_PAID, paid(order_id))
    assert late.label("saga_step") == "commit.nothing_reserved"
    assert stock.stock["MUG"] == [5, 0]


def test_a_cancellation_first_makes_the_late_order_reserve_nothing(
        inventory: Step, stock: FakeStock) -> None:
    order_id = uuid.uuid4()
    assert inventory.send(c.ORDER_CANCELLED, cancelled(order_id)).label(
        "saga_step") == "release.tombstone"
    late = inventory.send(c.ORDER_CREATED, created(order_id, ("MUG", 1)))
    assert late.types == []
    assert late.label("saga_step") == "reserve.already_decided"
    assert stock.stock["MUG"] == [5, 0]


def test_conservation_over_the_movements(inventory: Step, stock: FakeStock) -> None:
    orders = [uuid.uuid4() for _ in range(3)]
    for order_id in orders:
        inventory.send(c.ORDER_CREATED, created(order_id, ("MUG", 1)))
    inventory.send(c.ORDER_PAID, paid(orders[0]))
    inventory.send(c.ORDER_CANCELLED, cancelled(orders[1]))
    on_hand = 5 + sum(d for sku, _, d, _ in stock.movements if sku == "MUG")
    reserved = sum(d for sku, _, _, d in stock.movements if sku == "MUG")
    assert stock.stock["MUG"] == [on_hand, reserved] == [4, 1]
