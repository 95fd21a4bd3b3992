"""The foundation's promise, end to end on the local runtime: POST /orders, the inventory
function reserves the stock, and stock.reserved is on its topic within a deadline."""

from __future__ import annotations

import uuid

import pytest

from common.events import catalogue as c
from tests.e2e.conftest import LocalStack
from tests.helpers import read_topic, wait_for

pytestmark = pytest.mark.e2e


def test_order_is_reserved_and_stock_reserved_is_published(local_stack: LocalStack) -> None:
    customer = f"e2e-{uuid.uuid4().hex[:8]}"
    api = local_stack.client(customer)
    before = {p["sku"]: p["available"] for p in api.products()}
    order = api.place_order([("MUG-001", 2)], payment_mode="confirm")
    assert order["status"] == "CREATED"

    reserved = read_topic(
        local_stack.settings, c.STOCK_RESERVED, lambda e: e["partitionkey"] == order["id"],
        timeout=30,
    )
    assert reserved["source"] == "/saga/inventory"

    def available_dropped() -> bool:
        now = {p["sku"]: p["available"] for p in api.products()}
        return bool(now["MUG-001"] == before["MUG-001"] - 2)

    wait_for(available_dropped, timeout=10, message="GET /products to show the reservation")
    # Confirm mode: the order waits for the customer to pay.
    wait_for(lambda: api.order(order["id"])["status"] == "AWAITING_PAYMENT", timeout=15,
             message="the order to await payment")
