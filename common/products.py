"""Adding a product to the catalogue: the product, its stock row and the stock movement
that records its initial quantity, which the conservation check (initial + restocks =
on_hand + committed, docs/operations.md) relies on. The api's admin route and the demo
catalogue both add products this way."""

from __future__ import annotations

from decimal import Decimal

from common.pg import Tx

# All three rows in one statement (tests/integration/test_statements.py holds it to the
# migrated schema).
ADD_PRODUCT = """
WITH product AS (
    INSERT INTO inventory.products (sku, name, description, price)
    VALUES (%(sku)s, %(name)s, %(description)s, %(price)s)
    RETURNING sku
), stock AS (
    INSERT INTO inventory.stock (sku, on_hand, reserved)
    SELECT sku, %(on_hand)s::int, 0 FROM product
)
INSERT INTO inventory.stock_movements (sku, kind, delta_on_hand, delta_reserved)
SELECT sku, 'initial', %(on_hand)s::int, 0 FROM product
"""


def add_product(
    tx: Tx, sku: str, name: str, description: str, price: Decimal, on_hand: int
) -> None:
    tx.run(ADD_PRODUCT, {"sku": sku, "name": name, "description": description, "price": price,
                         "on_hand": on_hand})
