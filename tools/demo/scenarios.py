"""The seven orders of the demo: what each does, why it ends the way it does, and what
must be true at the end. Data only; drive.py follows an order, run.py runs them all."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

# What the demo does to an order while it waits for payment.
Action = Literal["none", "pay", "cancel", "let_expire"]
Customer = Literal["alice", "bob"]

# Deposits: alice can afford everything she orders, bob cannot afford his lamp.
DEPOSITS: dict[Customer, Decimal] = {"alice": Decimal("100.00"), "bob": Decimal("5.00")}
SCARCE_SKU = "RARE-005"  # knative/cluster/catalogue.json has 2 of these


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    customer: Customer
    sku: str  # preferred; another product with enough stock stands in if it has run out
    quantity: int  # ignored when beyond_stock: then one more than is available
    payment_mode: Literal["auto", "confirm"]
    action: Action
    expect_status: Literal["COMPLETED", "CANCELLED"]
    expect_reason: str | None
    expect_notifications: tuple[str, ...]  # notification kinds this order must produce
    why: str  # the path through the functions, for the reader
    address: str = "1 Demo Street, Springfield"
    beyond_stock: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "completed-auto", "Completed, paid automatically (payment_mode auto)",
        "alice", "MUG-001", 1, "auto", "none", "COMPLETED", None, ("order.completed",),
        "inventory reserved the stock; order-saga asked payments at once; payments froze "
        "and captured the money; the stock was committed and shipping dispatched it.",
    ),
    Scenario(
        "completed-confirm", "Completed after the customer confirmed (payment_mode confirm)",
        "alice", "TEE-002", 1, "confirm", "pay", "COMPLETED", None, ("order.completed",),
        "the order waited in AWAITING_PAYMENT until the demo, as the customer, called "
        "POST /orders/{id}/pay; from there it went on as in auto mode.",
    ),
    Scenario(
        "out-of-stock", "Cancelled: out_of_stock (more than the shop has)",
        "alice", SCARCE_SKU, 0, "auto", "none", "CANCELLED", "out_of_stock",
        ("order.cancelled",),
        "inventory could not reserve every line (it reserves all or none) and said "
        "stock.rejected; order-saga cancelled the order. No money was ever touched.",
        beyond_stock=True,
    ),
    Scenario(
        "insufficient-funds", "Cancelled: insufficient_funds (a wallet too small)",
        "bob", "LAMP-004", 1, "auto", "none", "CANCELLED", "insufficient_funds",
        ("order.cancelled",),
        "payments found less in bob's wallet than the order costs and said payment.failed; "
        "order-saga cancelled the order and inventory released the reserved stock.",
    ),
    Scenario(
        "payment-timeout", "Cancelled: payment_timeout (confirm mode, never paid)",
        "alice", "MUG-001", 1, "confirm", "let_expire", "CANCELLED", "payment_timeout",
        ("order.cancelled",),
        "nobody paid before payment_deadline; the timeouts sweep cancelled the order and "
        "inventory released the stock.",
    ),
    Scenario(
        "cancelled-by-customer", "Cancelled by the customer while awaiting payment",
        "alice", "BAG-003", 1, "confirm", "cancel", "CANCELLED", "cancelled_by_customer",
        ("order.cancelled",),
        "the demo, as the customer, called PUT /orders/{id} {\"status\": \"CANCELLED\"}; "
        "the api cancelled it and inventory released the stock.",
    ),
    Scenario(
        "shipping-failed", "Cancelled: shipping_failed, with a refund",
        "alice", "BAG-003", 1, "auto", "none", "CANCELLED", "shipping_failed",
        ("order.cancelled", "payment.refunded"),
        "the order was paid, but its address contains UNDELIVERABLE (the shipping "
        "function's test flag), so shipping failed; order-saga cancelled the order, "
        "payments refunded the money and inventory took the stock back.",
        address="1 Nowhere Lane, UNDELIVERABLE",
    ),
)
