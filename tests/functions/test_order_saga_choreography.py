"""Whole sagas through the real functions, in-process: every event a function emits is
delivered to every consumer the catalogue names, as the KafkaSources would. The
reorderings hold one event back and deliver it after a cancellation overtook it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from common import tables as t
from common.events import catalogue as c
from common.order_state import Order, Status
from common.settings import Settings
from tests.functions.saga_support import (
    assert_stock_conserved,
    assert_wallet_conserved,
    customer_cancels,
    new_account,
    new_product,
    place_order,
    read_order,
    row,
    rows,
    run_saga,
    stock,
    wallet,
)

pytestmark = pytest.mark.integration

D = Decimal


def _setup(settings: Settings, balance: str = "100.00", on_hand: int = 10
           ) -> tuple[str, str]:
    return new_account(settings, balance), new_product(settings, on_hand, price="12.50")


def _notes(settings: Settings, order: Order) -> list[str]:
    return sorted(r.kind for r in rows(settings, t.notifications, order_id=order.id))


def _conserved(settings: Settings, customer: str, sku: str) -> None:
    assert_wallet_conserved(settings, customer)
    assert_stock_conserved(settings, sku)


def test_happy_path_completes_pays_commits_and_ships(saga_env: Settings) -> None:
    customer, sku = _setup(saga_env)
    order, created = place_order(saga_env, customer, [(sku, 2, "12.50")])
    assert run_saga(saga_env, created) == []
    assert read_order(saga_env, order.id).status == Status.COMPLETED
    assert wallet(saga_env, customer) == (D("75.00"), D("0.00"))
    assert stock(saga_env, sku) == (8, 0)
    assert row(saga_env, t.shipments, order_id=order.id).status == "DISPATCHED"
    assert _notes(saga_env, order) == ["order.completed"]
    _conserved(saga_env, customer, sku)


def test_shipping_failure_refunds_and_returns_the_goods(saga_env: Settings) -> None:
    customer, sku = _setup(saga_env)
    order, created = place_order(saga_env, customer, [(sku, 3, "12.50")],
                                 address="UNDELIVERABLE street")
    run_saga(saga_env, created)
    now = read_order(saga_env, order.id)
    assert (now.status, now.reason) == (Status.CANCELLED, "shipping_failed")
    assert wallet(saga_env, customer) == (D("100.00"), D("0.00"))
    assert row(saga_env, t.payments, order_id=order.id).status == "REFUNDED"
    assert stock(saga_env, sku) == (10, 0)
    assert _notes(saga_env, order) == ["order.cancelled", "payment.refunded"]
    _conserved(saga_env, customer, sku)


def test_lack_of_funds_cancels_and_releases_the_stock(saga_env: Settings) -> None:
    customer, sku = _setup(saga_env, balance="10.00")
    order, created = place_order(saga_env, customer, [(sku, 1, "12.50")])
    run_saga(saga_env, created)
    now = read_order(saga_env, order.id)
    assert (now.status, now.reason) == (Status.CANCELLED, "insufficient_funds")
    assert stock(saga_env, sku) == (10, 0)
    assert wallet(saga_env, customer) == (D("10.00"), D("0.00"))
    assert _notes(saga_env, order) == ["order.cancelled"]
    _conserved(saga_env, customer, sku)


def test_out_of_stock_cancels_without_touching_the_wallet(saga_env: Settings) -> None:
    customer, sku = _setup(saga_env, on_hand=1)
    order, created = place_order(saga_env, customer, [(sku, 2, "12.50")])
    run_saga(saga_env, created)
    now = read_order(saga_env, order.id)
    assert (now.status, now.reason) == (Status.CANCELLED, "out_of_stock")
    assert row(saga_env, t.payments, order_id=order.id).status == "VOIDED"
    assert wallet(saga_env, customer) == (D("100.00"), D("0.00"))
    _conserved(saga_env, customer, sku)


def test_customer_cancel_while_payment_completes(saga_env: Settings) -> None:
    """payment.completed arrives after order.cancelled: payments refunds, the saga ignores
    the late completion, nothing ships and the stock comes back."""
    customer, sku = _setup(saga_env)
    order, created = place_order(saga_env, customer, [(sku, 1, "12.50")])
    [late] = run_saga(saga_env, created, hold=frozenset({c.PAYMENT_COMPLETED}))
    assert wallet(saga_env, customer) == (D("87.50"), D("0.00"))  # captured, not yet known
    run_saga(saga_env, customer_cancels(saga_env, order.id))
    run_saga(saga_env, [late])
    now = read_order(saga_env, order.id)
    assert (now.status, now.reason) == (Status.CANCELLED, "cancelled_by_customer")
    assert wallet(saga_env, customer) == (D("100.00"), D("0.00"))
    assert stock(saga_env, sku) == (10, 0)
    assert row(saga_env, t.shipments, order_id=order.id).reason == "order_cancelled"
    assert _notes(saga_env, order) == ["order.cancelled", "payment.refunded"]
    _conserved(saga_env, customer, sku)


def test_customer_cancel_overtakes_the_payment_request(saga_env: Settings) -> None:
    """order.cancelled reaches payments before payment.requested: the request is refused
    (VOIDED, payment.failed order_cancelled), and the saga ignores that failure."""
    customer, sku = _setup(saga_env)
    order, created = place_order(saga_env, customer, [(sku, 1, "12.50")])
    [late] = run_saga(saga_env, created, hold=frozenset({c.PAYMENT_REQUESTED}))
    run_saga(saga_env, customer_cancels(saga_env, order.id))
    run_saga(saga_env, [late])
    assert row(saga_env, t.payments, order_id=order.id).status == "VOIDED"
    assert read_order(saga_env, order.id).reason == "cancelled_by_customer"
    assert wallet(saga_env, customer) == (D("100.00"), D("0.00"))
    assert stock(saga_env, sku) == (10, 0)
    _conserved(saga_env, customer, sku)


def test_customer_cancel_before_stock_is_reserved(saga_env: Settings) -> None:
    """stock.reserved arrives after the customer cancelled: the saga ignores it, inventory
    released the reservation on order.cancelled, payments was never asked."""
    customer, sku = _setup(saga_env)
    order, created = place_order(saga_env, customer, [(sku, 4, "12.50")])
    [late] = run_saga(saga_env, created, hold=frozenset({c.STOCK_RESERVED}))
    assert stock(saga_env, sku) == (10, 4)
    run_saga(saga_env, customer_cancels(saga_env, order.id))
    run_saga(saga_env, [late])
    assert read_order(saga_env, order.id).status == Status.CANCELLED
    assert stock(saga_env, sku) == (10, 0)
    assert row(saga_env, t.payments, order_id=order.id).status == "VOIDED"
    _conserved(saga_env, customer, sku)


def test_customer_cancel_overtakes_order_created_at_inventory(saga_env: Settings) -> None:
    customer, sku = _setup(saga_env)
    order, created = place_order(saga_env, customer, [(sku, 4, "12.50")])
    run_saga(saga_env, customer_cancels(saga_env, order.id))
    run_saga(saga_env, created)
    assert stock(saga_env, sku) == (10, 0)
    assert row(saga_env, t.reservations, order_id=order.id).status == "RELEASED"
    _conserved(saga_env, customer, sku)
