"""Pydantic models for the `data` of every event type. Money is Decimal (a JSON string on the
wire), identifiers are UUIDs, times are timezone-aware. Unknown fields are refused so a
producer's typo cannot pass silently."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2, ge=0)]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
PaymentMode = Literal["auto", "confirm"]
CancelReason = Literal[
    "out_of_stock", "insufficient_funds", "payment_timeout", "cancelled_by_customer",
    "shipping_failed", "cancelled_by_operator",
]

class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: UUID

class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Sku
    quantity: int = Field(gt=0, le=10_000)
    unit_price: Money

class OrderCreated(EventData):
    customer_id: str
    items: list[OrderLine] = Field(min_length=1)
    total: Money
    payment_mode: PaymentMode
    shipping_address: str = ""
    created_at: AwareDatetime

class StockReserved(EventData):
    items: list[OrderLine] = Field(min_length=1)
    # Copied from order.created so the saga can go on to payment without reading the
    # order first. Optional: events written before it existed still validate.
    payment_mode: PaymentMode | None = None

class MissingStock(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str
    requested: int
    available: int

class StockRejected(EventData):
    reason: Literal["out_of_stock", "order_cancelled"]
    missing: list[MissingStock] = Field(default_factory=list)

class PaymentRequested(EventData):
    customer_id: str
    amount: Money
    shipping_address: str = ""

class PaymentCompleted(EventData):
    customer_id: str
    amount: Money
    shipping_address: str = ""

class PaymentFailed(EventData):
    customer_id: str
    amount: Money
    reason: Literal["insufficient_funds", "no_account", "order_cancelled"]

class PaymentRefunded(EventData):
    customer_id: str
    amount: Money

class ShipmentDispatched(EventData):
    tracking_number: str

class ShipmentFailed(EventData):
    reason: str

class OrderPaid(EventData):
    """The order-saga accepted the payment: only now is stock committed and goods shipped,
    so nothing ships for an order that was cancelled while its payment was in flight."""

    customer_id: str
    amount: Money
    shipping_address: str = ""


class OrderCompleted(EventData):
    customer_id: str

class OrderCancelled(EventData):
    customer_id: str
    reason: CancelReason
    previous_status: str

def utc_now() -> datetime:
    return datetime.now(UTC)
