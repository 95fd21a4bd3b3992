"""The payments function: check, freeze and capture at most once per order; refund or void
on cancellation, whichever order the events arrive in."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from cloudevents.http import CloudEvent
from sqlalchemy import insert

from common import tables as t
from common.events import catalogue as c
from common.events.models import OrderCancelled, PaymentRequested
from common.settings import Settings
from functions.payments.handlers import HANDLERS
from tests.functions.saga_support import (
    assert_wallet_conserved,
    binary_headers,
    check_kafka_source,
    check_service,
    data_of,
    deliver,
    emitted,
    event,
    inbox_has,
    new_account,
    post_raw,
    row,
    rows,
    wallet,
)
from tests.helpers import engine_of

pytestmark = pytest.mark.integration

D = Decimal


def _request(customer: str, amount: str, order_id: uuid.UUID | None = None) -> PaymentRequested:
    return PaymentRequested(order_id=order_id or uuid.uuid4(), customer_id=customer,
                            amount=D(amount), shipping_address="1 Main Street")


def _cancel(order_id: uuid.UUID, customer: str) -> OrderCancelled:
    return OrderCancelled(order_id=order_id, customer_id=customer,
                          reason="cancelled_by_customer", previous_status="PAYMENT_PROCESSING")


def _ledger_kinds(settings: Settings, order_id: uuid.UUID) -> list[str]:
    return sorted(r.kind for r in rows(settings, t.ledger, order_id=order_id))


def test_capture_freezes_then_captures_once(saga_env: Settings) -> None:
    customer = new_account(saga_env, "100.00")
    req = _request(customer, "30.00")
    ev = event(c.PAYMENT_REQUESTED, req, source="order-saga")
    assert deliver("payments", ev).status_code == 200
    assert deliver("payments", ev).status_code == 200  # duplicate delivery

    assert wallet(saga_env, customer) == (D("70.00"), D("0.00"))
    assert row(saga_env, t.payments, order_id=req.order_id).status == "CAPTURED"
    ledger = sorted(rows(saga_env, t.ledger, order_id=req.order_id), key=lambda r: r.id)
    assert [(r.kind, r.balance_after, r.frozen_after) for r in ledger] == [
        ("freeze", D("70.00"), D("30.00")), ("capture", D("70.00"), D("0.00"))]
    [completed] = emitted(saga_env, "payments", ev["id"])
    assert completed["type"] == c.PAYMENT_COMPLETED
    assert data_of(completed)["amount"] == "30.00"
    assert data_of(completed)["shipping_address"] == "1 Main Street"

    # A second request for the same order (another event id) never charges twice.
    again = event(c.PAYMENT_REQUESTED, req, source="api")
    assert deliver("payments", again).status_code == 200
    assert emitted(saga_env, "payments", again["id"]) == []
    assert wallet(saga_env, customer) == (D("70.00"), D("0.00"))
    assert_wallet_conserved(saga_env, customer)


@pytest.mark.parametrize(("balance", "reason"),
                         [("5.00", "insufficient_funds"), (None, "no_account")])
def test_refused_payment_fails_without_moving_money(
    saga_env: Settings, balance: str | None, reason: str
) -> None:
    customer = new_account(saga_env, balance)
    req = _request(customer, "30.00")
    ev = event(c.PAYMENT_REQUESTED, req)
    assert deliver("payments", ev).status_code == 200
    assert deliver("payments", ev).status_code == 200
    payment = row(saga_env, t.payments, order_id=req.order_id)
    assert (payment.status, payment.reason) == ("FAILED", reason)
    [failed] = emitted(saga_env, "payments", ev["id"])
    assert (failed["type"], data_of(failed)["reason"]) == (c.PAYMENT_FAILED, reason)
    assert _ledger_kinds(saga_env, req.order_id) == []
    if balance is not None:
        assert wallet(saga_env, customer) == (D(balance), D("0.00"))
        assert_wallet_conserved(saga_env, customer)


def test_cancel_after_capture_refunds_once(saga_env: Settings) -> None:
    customer = new_account(saga_env, "50.00")
    req = _request(customer, "20.00")
    assert deliver("payments", event(c.PAYMENT_REQUESTED, req)).status_code == 200
    cancel = event(c.ORDER_CANCELLED, _cancel(req.order_id, customer))
    assert deliver("payments", cancel).status_code == 200
    assert deliver("payments", cancel).status_code == 200
    # A second cancellation (another event id, e.g. a replayed older copy) changes nothing.
    assert deliver("payments", event(c.ORDER_CANCELLED, _cancel(req.order_id, customer))
                   ).status_code == 200

    assert wallet(saga_env, customer) == (D("50.00"), D("0.00"))
    assert row(saga_env, t.payments, order_id=req.order_id).status == "REFUNDED"
    assert _ledger_kinds(saga_env, req.order_id) == ["capture", "freeze", "refund"]
    [refunded] = emitted(saga_env, "payments", cancel["id"])
    assert refunded["type"] == c.PAYMENT_REFUNDED
    assert data_of(refunded)["amount"] == "20.00"
    assert_wallet_conserved(saga_env, customer)


def test_cancel_before_request_voids_and_the_late_request_is_refused(saga_env: Settings) -> None:
    customer = new_account(saga_env, "50.00")
    req = _request(customer, "20.00")
    cancel = event(c.ORDER_CANCELLED, _cancel(req.order_id, customer))
    assert deliver("payments", cancel).status_code == 200
    assert emitted(saga_env, "payments", cancel["id"]) == []
    voided = row(saga_env, t.payments, order_id=req.order_id)
    assert (voided.status, voided.amount) == ("VOIDED", D("0.00"))

    late = event(c.PAYMENT_REQUESTED, req)
    assert deliver("payments", late).status_code == 200
    assert deliver("payments", late).status_code == 200
    [failed] = emitted(saga_env, "payments", late["id"])
    assert (failed["type"], data_of(failed)["reason"]) == (c.PAYMENT_FAILED, "order_cancelled")
    assert wallet(saga_env, customer) == (D("50.00"), D("0.00"))
    assert row(saga_env, t.payments, order_id=req.order_id).status == "VOIDED"
    assert_wallet_conserved(saga_env, customer)


def test_cancel_of_a_frozen_payment_unfreezes(saga_env: Settings) -> None:
    # FROZEN is never left behind by a capture (freeze and capture share a transaction);
    # it is set up here as a payment held by a two-step flow would leave it.
    customer = new_account(saga_env, "40.00")
    order_id = uuid.uuid4()
    with engine_of(saga_env).begin() as conn:
        conn.execute(t.accounts.update().where(t.accounts.c.customer_id == customer)
                     .values(balance=D("25.00"), frozen=D("15.00")))
        conn.execute(insert(t.ledger).values(
            customer_id=customer, order_id=order_id, kind="freeze", amount=D("15.00"),
            balance_after=D("25.00"), frozen_after=D("15.00")))
        conn.execute(insert(t.payments).values(
            order_id=order_id, customer_id=customer, amount=D("15.00"), status="FROZEN"))
    cancel = event(c.ORDER_CANCELLED, _cancel(order_id, customer))
    assert deliver("payments", cancel).status_code == 200
    assert deliver("payments", cancel).status_code == 200
    assert wallet(saga_env, customer) == (D("40.00"), D("0.00"))
    assert row(saga_env, t.payments, order_id=order_id).status == "VOIDED"
    assert _ledger_kinds(saga_env, order_id) == ["freeze", "unfreeze"]
    assert emitted(saga_env, "payments", cancel["id"]) == []
    assert_wallet_conserved(saga_env, customer)


def test_concurrent_payments_drain_one_wallet_without_going_negative(saga_env: Settings) -> None:
    customer = new_account(saga_env, "100.00")
    requests = [_request(customer, "15.00") for _ in range(12)]  # 180.00 asked of 100.00
    statuses: list[int] = []
    barrier = threading.Barrier(len(requests))
    sent = [event(c.PAYMENT_REQUESTED, r) for r in requests]

    def pay(ev: CloudEvent) -> None:
        barrier.wait()
        statuses.append(deliver("payments", ev).status_code)

    threads = [threading.Thread(target=pay, args=(ev,)) for ev in sent]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * len(requests)

    payments = [row(saga_env, t.payments, order_id=r.order_id) for r in requests]
    captured = [p for p in payments if p.status == "CAPTURED"]
    assert len(captured) == 6  # 6 x 15.00 = 90.00; a seventh would need 105.00
    assert {p.reason for p in payments if p.status == "FAILED"} == {"insufficient_funds"}
    balance, frozen = wallet(saga_env, customer)
    assert balance == D("100.00") - sum(p.amount for p in captured)
    assert (balance, frozen) == (D("10.00"), D("0.00"))
    ledger = rows(saga_env, t.ledger, customer_id=customer)
    assert all(r.balance_after >= 0 and r.frozen_after >= 0 for r in ledger)
    assert sum(r.amount for r in ledger if r.kind == "capture") == D("90.00")
    outcomes = [e for ev in sent for e in emitted(saga_env, "payments", ev["id"])]
    completed = [D(data_of(e)["amount"]) for e in outcomes if e["type"] == c.PAYMENT_COMPLETED]
    assert sum(completed) == sum(p.amount for p in captured) == D("90.00")
    assert len(outcomes) == len(requests)  # one answer per request, completed or failed
    assert_wallet_conserved(saga_env, customer)


def test_cancel_racing_the_request_never_keeps_the_money(saga_env: Settings) -> None:
    customer = new_account(saga_env, "100.00")
    races = [_request(customer, "10.00") for _ in range(6)]
    statuses: list[int] = []

    def send(ev_: CloudEvent) -> None:
        statuses.append(deliver("payments", ev_).status_code)

    for req in races:
        pair = [event(c.PAYMENT_REQUESTED, req),
                event(c.ORDER_CANCELLED, _cancel(req.order_id, customer))]
        threads = [threading.Thread(target=send, args=(e,)) for e in pair]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert set(statuses) == {200}
    for req in races:
        assert row(saga_env, t.payments, order_id=req.order_id).status in ("VOIDED", "REFUNDED")
    assert wallet(saga_env, customer) == (D("100.00"), D("0.00"))
    assert_wallet_conserved(saga_env, customer)


@pytest.mark.parametrize("case", ["bad amount", "missing customer", "not json"])
def test_malformed_events_answer_4xx_and_write_nothing(saga_env: Settings, case: str) -> None:
    customer = new_account(saga_env, "10.00")
    ev = event(c.PAYMENT_REQUESTED, _request(customer, "1.00"))
    headers = binary_headers(ev)
    body = {
        "bad amount": b'{"order_id": "%s", "customer_id": "x", "amount": "-1"}',
        "missing customer": b'{"order_id": "%s", "amount": "1.00"}',
        "not json": b"{%s",
    }[case] % str(uuid.uuid4()).encode()
    response = post_raw("payments", headers, body)
    assert 400 <= response.status_code < 500
    assert response.status_code not in (404, 408, 409, 429)
    assert not inbox_has(saga_env, "payments", ev["id"])
    assert wallet(saga_env, customer) == (D("10.00"), D("0.00"))


def test_manifests_match_the_catalogue() -> None:
    check_service(c.PAYMENTS)
    check_kafka_source(c.PAYMENTS, HANDLERS)
