"""The shipping function: one shipment per paid order, the UNDELIVERABLE test flag, and the
tombstone that keeps a cancelled order from ever shipping."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest
from cloudevents.http import CloudEvent

from common import tables as t
from common.events import catalogue as c
from common.events.models import OrderCancelled, OrderPaid
from common.settings import Settings
from functions.shipping.handlers import HANDLERS
from tests.functions.saga_support import (
    binary_headers,
    check_kafka_source,
    check_service,
    data_of,
    deliver,
    emitted,
    event,
    inbox_has,
    post_raw,
    row,
    types_of,
)

pytestmark = pytest.mark.integration


def _paid(order_id: uuid.UUID, address: str = "1 Main Street") -> CloudEvent:
    return event(c.ORDER_PAID, OrderPaid(order_id=order_id, customer_id="alice",
                                         amount=Decimal("9.00"), shipping_address=address))


def _cancelled(order_id: uuid.UUID) -> CloudEvent:
    return event(c.ORDER_CANCELLED, OrderCancelled(
        order_id=order_id, customer_id="alice", reason="cancelled_by_customer",
        previous_status="PAYMENT_PROCESSING"))


def _twice(settings: Settings, ev: CloudEvent) -> list[CloudEvent]:
    """Deliver twice (as a redelivery would); what the event emitted."""
    assert deliver("shipping", ev).status_code == 200
    assert deliver("shipping", ev).status_code == 200
    return emitted(settings, "shipping", ev["id"])


def test_paid_order_ships_once_with_a_tracking_number(saga_env: Settings) -> None:
    order_id = uuid.uuid4()
    [dispatched] = _twice(saga_env, _paid(order_id))
    shipment = row(saga_env, t.shipments, order_id=order_id)
    assert shipment.status == "DISPATCHED"
    assert re.fullmatch(r"TRK-[0-9A-F]{12}", shipment.tracking_number)
    assert shipment.address == "1 Main Street"
    assert dispatched["type"] == c.SHIPMENT_DISPATCHED
    assert data_of(dispatched)["tracking_number"] == shipment.tracking_number
    # Another order.paid for the order (another event id) does not ship it again.
    assert _twice(saga_env, _paid(order_id)) == []


@pytest.mark.parametrize("address", ["UNDELIVERABLE, 1 Nowhere Lane", "box 9 (undeliverable)"])
def test_undeliverable_address_fails_the_shipment(saga_env: Settings, address: str) -> None:
    order_id = uuid.uuid4()
    [failed] = _twice(saga_env, _paid(order_id, address))
    shipment = row(saga_env, t.shipments, order_id=order_id)
    assert (shipment.status, shipment.tracking_number) == ("FAILED", None)
    assert shipment.reason == "undeliverable_address"
    assert (failed["type"], data_of(failed)["reason"]) == (
        c.SHIPMENT_FAILED, "undeliverable_address")


def test_the_flag_is_a_whole_word(saga_env: Settings) -> None:
    order_id = uuid.uuid4()
    assert types_of(_twice(saga_env, _paid(order_id, "Undeliverablestrasse 4"))) == [
        c.SHIPMENT_DISPATCHED]


def test_paid_after_cancelled_ships_nothing(saga_env: Settings) -> None:
    order_id = uuid.uuid4()
    assert _twice(saga_env, _cancelled(order_id)) == []
    tombstone = row(saga_env, t.shipments, order_id=order_id)
    assert (tombstone.status, tombstone.reason) == ("FAILED", "order_cancelled")
    assert _twice(saga_env, _paid(order_id)) == []
    assert row(saga_env, t.shipments, order_id=order_id).reason == "order_cancelled"


def test_cancel_after_dispatch_keeps_the_shipment(saga_env: Settings) -> None:
    order_id = uuid.uuid4()
    _twice(saga_env, _paid(order_id))
    assert _twice(saga_env, _cancelled(order_id)) == []
    assert row(saga_env, t.shipments, order_id=order_id).status == "DISPATCHED"


def test_malformed_event_answers_4xx_and_writes_nothing(saga_env: Settings) -> None:
    order_id = uuid.uuid4()
    ev = _paid(order_id)
    response = post_raw("shipping", binary_headers(ev),
                        b'{"order_id": "%s", "amount": "x"}' % str(order_id).encode())
    assert 400 <= response.status_code < 500
    assert response.status_code not in (404, 408, 409, 429)
    assert not inbox_has(saga_env, "shipping", ev["id"])
    assert row(saga_env, t.shipments, order_id=order_id) is None


def test_manifests_match_the_catalogue() -> None:
    check_service(c.SHIPPING)
    check_kafka_source(c.SHIPPING, HANDLERS)
