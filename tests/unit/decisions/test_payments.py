"""The payments' decisions (functions/payments: charge.py, refund.py) through the step
runtime on a fake unit of work: at most one payment per order, money moved only with the
balance to cover it, refunds and voids as compensations in any delivery order."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from common.events import catalogue as c
from common.events.models import CancelReason, OrderCancelled, PaymentRequested
from functions.payments.handlers import HANDLERS
from functions.payments.wallet import Account, Payment
from tests.unit.decisions.fakes import FakeWallet, Step, event_for, step


@pytest.fixture
def wallet() -> FakeWallet:
    return FakeWallet({"alice": Account("alice", Decimal("100.00"), Decimal("0.00"))}, {}, [])


@pytest.fixture
def payments(wallet: FakeWallet, caplog: pytest.LogCaptureFixture) -> Step:
    return step(c.PAYMENTS, HANDLERS, lambda _outbox: wallet, caplog)


def request(order_id: uuid.UUID, amount: str, customer: str = "alice") -> PaymentRequested:
    return PaymentRequested(order_id=order_id, customer_id=customer, amount=Decimal(amount),
                            shipping_address="1 Main Street")


def cancelled(order_id: uuid.UUID, reason: CancelReason = "cancelled_by_customer"
              ) -> OrderCancelled:
    return OrderCancelled(order_id=order_id, customer_id="alice", reason=reason,
                          previous_status="PAID")


def test_a_covered_payment_is_frozen_and_captured(payments: Step, wallet: FakeWallet) -> None:
    order_id = uuid.uuid4()
    done = payments.send(c.PAYMENT_REQUESTED, request(order_id, "30.00"))
    assert done.types == [c.PAYMENT_COMPLETED]
    assert done.data()["shipping_address"] == "1 Main Street"
    assert wallet.accounts["alice"] == Account("alice", Decimal("70.00"), Decimal("0.00"))
    assert wallet.payments[order_id].status == "CAPTURED"
    assert [row["kind"] for row in wallet.ledger] == ["freeze", "capture"]
    assert done.label("saga_step") == "capture"


@pytest.mark.parametrize(("customer", "amount", "reason"), [
    ("alice", "100.01", "insufficient_funds"),
    ("bob", "1.00", "no_account"),
])
def test_a_refused_payment_moves_no_money(payments: Step, wallet: FakeWallet, customer: str,
                                          amount: str, reason: str) -> None:
    order_id = uuid.uuid4()
    done = payments.send(c.PAYMENT_REQUESTED, request(order_id, amount, customer))
    assert done.types == [c.PAYMENT_FAILED]
    assert done.data()["reason"] == reason
    assert wallet.payments[order_id].status == "FAILED"
    assert wallet.accounts["alice"].balance == Decimal("100.00")
    assert wallet.ledger == []
    assert done.label("outcome") == reason


def test_an_order_is_paid_at_most_once(payments: Step, wallet: FakeWallet) -> None:
    order_id = uuid.uuid4()
    payments.send(c.PAYMENT_REQUESTED, request(order_id, "30.00"))
    # A second request for the same order (the api and the saga both asked): a new event.
    again = payments.send(c.PAYMENT_REQUESTED, request(order_id, "30.00"))
    assert again.types == []
    assert again.label("saga_step") == "charge.already_decided"
    assert wallet.accounts["alice"].balance == Decimal("70.00")


def test_a_cancellation_before_the_request_leaves_a_tombstone_that_refuses_it(
        payments: Step, wallet: FakeWallet) -> None:
    order_id = uuid.uuid4()
    void = payments.send(c.ORDER_CANCELLED, cancelled(order_id))
    assert void.types == [] and void.label("saga_step") == "void.tombstone"
    late = payments.send(c.PAYMENT_REQUESTED, request(order_id, "30.00"))
    assert late.types == [c.PAYMENT_FAILED]
    assert late.data()["reason"] == "order_cancelled"
    assert wallet.accounts["alice"].balance == Decimal("100.00")


def test_a_captured_payment_is_refunded(payments: Step, wallet: FakeWallet) -> None:
    order_id = uuid.uuid4()
    payments.send(c.PAYMENT_REQUESTED, request(order_id, "30.00"))
    done = payments.send(c.ORDER_CANCELLED, cancelled(order_id, "shipping_failed"))
    assert done.types == [c.PAYMENT_REFUNDED]
    assert done.action == "saga.compensation.refunded"
    assert wallet.accounts["alice"].balance == Decimal("100.00")
    assert wallet.payments[order_id].status == "REFUNDED"
    # A second cancellation finds nothing more to give back.
    again = payments.send(c.ORDER_CANCELLED, cancelled(order_id, "shipping_failed"))
    assert again.types == [] and again.label("saga_step") == "refund.nothing_taken"
    assert wallet.accounts["alice"].balance == Decimal("100.00")


def test_a_frozen_payment_is_unfrozen(payments: Step, wallet: FakeWallet) -> None:
    order_id = uuid.uuid4()
    wallet.accounts["alice"] = Account("alice", Decimal("70.00"), Decimal("30.00"))
    wallet.payments[order_id] = Payment(order_id, "alice", Decimal("30.00"), "FROZEN")
    done = payments.send(c.ORDER_CANCELLED, cancelled(order_id))
    assert done.types == []
    assert done.action == "saga.compensation.unfrozen"
    assert wallet.accounts["alice"] == Account("alice", Decimal("100.00"), Decimal("0.00"))
    assert wallet.payments[order_id].status == "VOIDED"


def test_a_refused_payment_has_nothing_to_refund(payments: Step, wallet: FakeWallet) -> None:
    order_id = uuid.uuid4()
    payments.send(c.PAYMENT_REQUESTED, request(order_id, "500.00"))
    done = payments.send(c.ORDER_CANCELLED, cancelled(order_id, "insufficient_funds"))
    assert done.types == [] and done.label("payment_status") == "FAILED"
    assert wallet.accounts["alice"].balance == Decimal("100.00")


def test_a_duplicate_cancellation_is_skipped(payments: Step, wallet: FakeWallet) -> None:
    order_id = uuid.uuid4()
    payments.send(c.PAYMENT_REQUESTED, request(order_id, "30.00"))
    event = event_for(c.ORDER_CANCELLED, cancelled(order_id))
    assert payments.deliver(event).types == [c.PAYMENT_REFUNDED]
    assert payments.deliver(event).action == "saga.step.skipped_duplicate"
    assert wallet.accounts["alice"].balance == Decimal("100.00")
