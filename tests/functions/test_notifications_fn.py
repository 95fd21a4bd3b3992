"""The notifications function: one notification per outcome, in plain words."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import get_args

import pytest
from cloudevents.http import CloudEvent

from common import tables as t
from common.events import catalogue as c
from common.events.models import CancelReason, OrderCancelled, OrderCompleted, PaymentRefunded
from common.settings import Settings
from functions.notifications.handlers import HANDLERS
from functions.notifications.write import REASON_TEXT
from tests.functions.saga_support import (
    binary_headers,
    check_kafka_source,
    check_service,
    deliver,
    event,
    inbox_has,
    post_raw,
    rows,
)

pytestmark = pytest.mark.integration


def _twice(ev: CloudEvent) -> None:
    assert deliver("notifications", ev).status_code == 200
    assert deliver("notifications", ev).status_code == 200


def test_completed_order_notifies_once(saga_env: Settings) -> None:
    order_id, customer = uuid.uuid4(), f"cust-{uuid.uuid4().hex[:8]}"
    _twice(event(c.ORDER_COMPLETED, OrderCompleted(order_id=order_id, customer_id=customer)))
    [note] = rows(saga_env, t.notifications, customer_id=customer)
    assert (note.kind, note.order_id) == ("order.completed", order_id)
    assert str(order_id)[:8] in note.title
    assert note.read_at is None


@pytest.mark.parametrize("reason", get_args(CancelReason))
def test_cancellation_explains_its_reason(saga_env: Settings, reason: CancelReason) -> None:
    order_id, customer = uuid.uuid4(), f"cust-{uuid.uuid4().hex[:8]}"
    _twice(event(c.ORDER_CANCELLED, OrderCancelled.model_validate(
        {"order_id": order_id, "customer_id": customer, "reason": reason,
         "previous_status": "PAID"})))
    [note] = rows(saga_env, t.notifications, customer_id=customer)
    assert note.kind == "order.cancelled"
    assert note.body.startswith(REASON_TEXT[reason])
    assert "refunded" in note.body  # cancelled after payment: the money comes back


def test_every_reason_has_one_sentence() -> None:
    assert set(REASON_TEXT) == set(get_args(CancelReason))
    for text in REASON_TEXT.values():
        assert text.endswith(".") and text.count(".") == 1


def test_refund_notifies_with_the_amount(saga_env: Settings) -> None:
    order_id, customer = uuid.uuid4(), f"cust-{uuid.uuid4().hex[:8]}"
    _twice(event(c.PAYMENT_REFUNDED, PaymentRefunded(order_id=order_id, customer_id=customer,
                                                      amount=Decimal("12.50"))))
    [note] = rows(saga_env, t.notifications, customer_id=customer)
    assert note.kind == "payment.refunded"
    assert "12.50" in note.body


def test_malformed_event_answers_4xx_and_writes_nothing(saga_env: Settings) -> None:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    ev = event(c.ORDER_COMPLETED, OrderCompleted(order_id=uuid.uuid4(), customer_id=customer))
    response = post_raw("notifications", binary_headers(ev), b'{"customer_id": "%s"}'
                        % customer.encode())
    assert 400 <= response.status_code < 500
    assert response.status_code not in (404, 408, 409, 429)
    assert not inbox_has(saga_env, "notifications", ev["id"])
    assert rows(saga_env, t.notifications, customer_id=customer) == []


def test_manifests_match_the_catalogue() -> None:
    check_service(c.NOTIFICATIONS)
    check_kafka_source(c.NOTIFICATIONS, HANDLERS)
