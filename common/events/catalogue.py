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
RETENTION = "retention"
DLQ = "dlq"
CONSOLE = "console"

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


# Event types, named once: code that emits uses these (`emit(ORDER_CREATED, ...)`).
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


def _spec(
    type_: str, model: type[BaseModel], producers: set[str], consumers: set[str]
) -> EventSpec:
    return EventSpec(type_, model, frozenset(producers), frozenset(consumers))


CATALOGUE: dict[str, EventSpec] = {
    s.type: s
    for s in (
        _spec(ORDER_CREATED, m.OrderCreated, {API}, {INVENTORY}),
        _spec(STOCK_RESERVED, m.StockReserved, {INVENTORY}, {ORDER_SAGA}),
        _spec(STOCK_REJECTED, m.StockRejected, {INVENTORY}, {ORDER_SAGA}),
        _spec(PAYMENT_REQUESTED, m.PaymentRequested, {ORDER_SAGA, API}, {PAYMENTS}),
        _spec(PAYMENT_COMPLETED, m.PaymentCompleted, {PAYMENTS}, {ORDER_SAGA}),
        _spec(PAYMENT_FAILED, m.PaymentFailed, {PAYMENTS}, {ORDER_SAGA}),
        _spec(PAYMENT_REFUNDED, m.PaymentRefunded, {PAYMENTS}, {NOTIFICATIONS}),
        _spec(SHIPMENT_DISPATCHED, m.ShipmentDispatched, {SHIPPING}, {ORDER_SAGA}),
        _spec(SHIPMENT_FAILED, m.ShipmentFailed, {SHIPPING}, {ORDER_SAGA}),
        _spec(ORDER_PAID, m.OrderPaid, {ORDER_SAGA}, {SHIPPING, INVENTORY}),
        _spec(ORDER_COMPLETED, m.OrderCompleted, {ORDER_SAGA}, {NOTIFICATIONS}),
        _spec(ORDER_CANCELLED, m.OrderCancelled, {ORDER_SAGA, API, TIMEOUTS, CONSOLE},
              {NOTIFICATIONS, INVENTORY, PAYMENTS, SHIPPING}),
    )
}


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

