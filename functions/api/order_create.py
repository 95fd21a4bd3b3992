"""Placing an order: merge the lines, price them from the catalogue, and create the order
through the state machine, at most once per Idempotency-Key.

The idempotency row is inserted in the order's own transaction, after the order (its
foreign key needs the order). Two concurrent requests with one key both get that far; the
second insert waits for the first transaction and, once it commits, finds the conflict: the
loser rolls back its order and re-reads the winner's, so one order exists either way.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from decimal import Decimal

from pydantic import Field

from common import order_state
from common.events.models import OrderLine, PaymentMode, Sku
from common.outbox import Outbox
from common.pg import Tx
from common.problems import Problem
from functions.api import sql
from functions.api.errors import field_problem
from functions.api.order_views import OrderOut, created_order_out, fetch_order
from functions.api.route_specs import Call
from functions.api.schemas import RequestModel
from functions.api.tx import transact, transact_with_events

MAX_LINE_QUANTITY = 10_000


class OrderItemIn(RequestModel):
    sku: Sku
    quantity: int = Field(gt=0, le=MAX_LINE_QUANTITY)


class CreateOrderIn(RequestModel):
    items: list[OrderItemIn] = Field(
        min_length=1, max_length=100, description="Lines with the same SKU are merged."
    )
    payment_mode: PaymentMode = Field(
        default="auto",
        description="auto: pay as soon as stock is reserved; confirm: wait for "
        "POST /orders/{id}/pay within the payment window.",
    )
    shipping_address: str = Field(default="", max_length=500)


class _LostRace(Exception):
    """Another request with the same Idempotency-Key committed its order first."""


def place_order(call: Call, body: CreateOrderIn, key: str | None) -> tuple[OrderOut, bool]:
    """The order and whether it already existed (an Idempotency-Key replay). A replay,
    and the loser of two concurrent requests with one key, get the stored order."""
    customer = call.user.subject
    lines = _merge(body)
    fingerprint = request_fingerprint(body)

    def work(tx: Tx, outbox: Outbox) -> tuple[OrderOut, bool]:
        # No lookup of the key first: the key's own insert below finds a prior use (its
        # conflict), and then this transaction is rolled back and the prior order read.
        # A replay is rare; every first request saves a round trip.
        order_id = uuid.uuid4()
        priced = _priced(tx, lines)
        order = order_state.create_order(
            tx, outbox, order_id=order_id, customer_id=customer, lines=priced,
            payment_mode=body.payment_mode, shipping_address=body.shipping_address,
            actor=call.actor,
        )
        if key is not None:
            claimed = tx.one(sql.CLAIM_IDEMPOTENCY_KEY, {
                "customer_id": customer, "key": key, "request_hash": fingerprint,
                "order_id": order_id})
            if claimed is None:
                raise _LostRace
        return created_order_out(order, priced), False

    try:
        return transact_with_events(call, work)
    except _LostRace:
        assert key is not None
        winner = transact(call, lambda tx: _prior_order(tx, customer, key, fingerprint))
        if winner is None:  # the winner's order was deleted since: nothing to return
            raise Problem(409, "conflict", "retry the request") from None
        return winner, True


def _merge(body: CreateOrderIn) -> dict[str, tuple[int, int]]:
    """SKU -> (total quantity, index of its first line), in the order first seen."""
    merged: dict[str, tuple[int, int]] = {}
    for index, item in enumerate(body.items):
        quantity, first = merged.get(item.sku, (0, index))
        merged[item.sku] = (quantity + item.quantity, first)
    for sku, (quantity, first) in merged.items():
        if quantity > MAX_LINE_QUANTITY:
            raise field_problem(
                f"items.{first}.quantity",
                f"the lines for {sku} add up to {quantity}, more than {MAX_LINE_QUANTITY}",
            )
    return merged


def request_fingerprint(body: CreateOrderIn) -> str:
    """What makes two requests "the same": the merged lines, mode and address. A replay
    that lists the same lines in another order or split differently is the same order."""
    canonical = {
        "items": sorted([sku, quantity] for sku, (quantity, _) in _merge(body).items()),
        "payment_mode": body.payment_mode,
        "shipping_address": body.shipping_address,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _priced(tx: Tx, lines: dict[str, tuple[int, int]]) -> list[OrderLine]:
    prices: dict[str, Decimal] = dict(tx.all(sql.PRICES, {"skus": list(lines)}))
    unknown = [(sku, first) for sku, (_, first) in lines.items() if sku not in prices]
    if unknown:
        errors = [
            {"field": f"items.{first}.sku", "message": f"unknown SKU {sku!r}",
             "type": "unknown_sku"}
            for sku, first in unknown
        ]
        raise Problem(422, "unknown product", f"{errors[0]['field']}: {errors[0]['message']}",
                         errors=errors)
    return [
        OrderLine(sku=sku, quantity=quantity, unit_price=prices[sku])
        for sku, (quantity, _) in lines.items()
    ]


def _prior_order(tx: Tx, customer: str, key: str, fingerprint: str) -> OrderOut | None:
    row = tx.one(sql.PRIOR_ORDER, {"customer_id": customer, "key": key})
    if row is None:
        return None
    request_hash, order_id = row
    if request_hash != fingerprint:
        raise field_problem(
            "Idempotency-Key", "was already used with a different request body",
            title="idempotency key reused",
        )
    return fetch_order(tx, order_id)

