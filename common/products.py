"""Adding a product to the catalogue: the product, its stock row and the stock movement
that records its initial quantity, which the conservation check (initial + restocks =
on_hand + committed, docs/operations.md) relies on. The api's admin route and the demo
catalogue both add products this way."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, insert

from common import tables as t


def add_product(
    conn: Connection, sku: str, name: str, description: str, price: Decimal, on_hand: int
) -> None:
    conn.execute(
        insert(t.products).values(sku=sku, name=name, description=description, price=price)
    )
    conn.execute(insert(t.stock).values(sku=sku, on_hand=on_hand, reserved=0))
    conn.execute(
        insert(t.stock_movements).values(
            sku=sku, kind="initial", delta_on_hand=on_hand, delta_reserved=0
        )
    )
