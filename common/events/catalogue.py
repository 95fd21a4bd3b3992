"""The single truth about events: type <-> topic <-> data model <-> producers <-> consumers.

One topic per event type, named exactly as the type. Manifests (KafkaSources, KafkaTopics)
and the step runtime are checked against this table by tests, so a change here is a change
everywhere or a failing test.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from pydantic import BaseModel

from common.events import models as m

# Function names, as in knative/ Service names.
API = "api"
INVENTORY = "inventory"
PAYMENTS = "payments"
SHIPPING = "shipping"
ORDER_SAGA = "order-saga"
NOTIFICATIONS = "notifications"
TIMEOUTS = "timeouts"
OUTBOX_RELAY = "outbox-relay"
DLQ = "dlq"

# Not an event type: failed deliveries of any type land here (Knative deadLetterSink).
DEAD_LETTER_TOPIC = "saga.dead-letters"


@dataclass(frozen=True)
class EventSpec:
    type: str
    model: builtins.type[BaseModel]
    producers: frozenset[str]
    consumers: frozenset[str]

    @property
    def topic(self) -> str:
        return self.type


def _spec(
    type_: str, model: type[BaseModel], producers: set[str], consumers: set[str]
) -> EventSpec:
    return EventSpec(type_, model, frozenset(producers), frozenset(consumers))


CATALOGUE: dict[str, EventSpec] = {
    s.type: s
    for s in (
        _spec("shop.order.created.v1", m.OrderCreated, {API}, {INVENTORY}),
        _spec("shop.stock.reserved.v1", m.StockReserved, {INVENTORY}, {ORDER_SAGA}),
        _spec("shop.stock.rejected.v1", m.StockRejected, {INVENTORY}, {ORDER_SAGA}),
        _spec("shop.payment.requested.v1", m.PaymentRequested, {ORDER_SAGA, API}, {PAYMENTS}),
        _spec("shop.payment.completed.v1", m.PaymentCompleted, {PAYMENTS}, {ORDER_SAGA}),
        _spec("shop.payment.failed.v1", m.PaymentFailed, {PAYMENTS}, {ORDER_SAGA}),
        _spec("shop.payment.refunded.v1", m.PaymentRefunded, {PAYMENTS}, {NOTIFICATIONS}),
        _spec("shop.shipment.dispatched.v1", m.ShipmentDispatched, {SHIPPING}, {ORDER_SAGA}),
        _spec("shop.shipment.failed.v1", m.ShipmentFailed, {SHIPPING}, {ORDER_SAGA}),
        _spec("shop.order.paid.v1", m.OrderPaid, {ORDER_SAGA}, {SHIPPING, INVENTORY}),
        _spec("shop.order.completed.v1", m.OrderCompleted, {ORDER_SAGA}, {NOTIFICATIONS}),
        _spec(
            "shop.order.cancelled.v1", m.OrderCancelled, {ORDER_SAGA, API, TIMEOUTS},
            {NOTIFICATIONS, INVENTORY, PAYMENTS, SHIPPING},
        ),
    )
}

# Short names used by code that emits events: `emit(ORDER_CREATED, ...)`.
ORDER_CREATED = "shop.order.created.v1"
STOCK_RESERVED = "shop.stock.reserved.v1"
STOCK_REJECTED = "shop.stock.rejected.v1"
PAYMENT_REQUESTED = "shop.payment.requested.v1"
PAYMENT_COMPLETED = "shop.payment.completed.v1"
PAYMENT_FAILED = "shop.payment.failed.v1"
PAYMENT_REFUNDED = "shop.payment.refunded.v1"
SHIPMENT_DISPATCHED = "shop.shipment.dispatched.v1"
SHIPMENT_FAILED = "shop.shipment.failed.v1"
ORDER_PAID = "shop.order.paid.v1"
ORDER_COMPLETED = "shop.order.completed.v1"
ORDER_CANCELLED = "shop.order.cancelled.v1"


class UnknownEventType(KeyError):
    pass


def spec_for(event_type: str) -> EventSpec:
    try:
        return CATALOGUE[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def topics() -> list[str]:
    """Every topic the system needs, the dead-letter topic included."""
    return sorted({s.topic for s in CATALOGUE.values()} | {DEAD_LETTER_TOPIC})


def types_consumed_by(function: str) -> list[str]:
    return sorted(t for t, s in CATALOGUE.items() if function in s.consumers)

