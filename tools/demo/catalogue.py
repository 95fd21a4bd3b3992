"""The demo catalogue `./taskw up` loads into an empty database, so a newcomer can order
something straight away."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import create_engine, func, select

from common import tables as t
from common.products import add_product
from common.settings import to_sqlalchemy_url

DEMO_PRODUCTS: tuple[tuple[str, str, str, Decimal, int], ...] = (
    ("MUG-001", "Enamel mug", "A camp mug that survives the dishwasher.", Decimal("12.50"), 100),
    ("TEE-002", "Cotton T-shirt", "Plain, heavy cotton, unisex cut.", Decimal("19.90"), 100),
    ("BAG-003", "Canvas tote", "Carries a week of groceries.", Decimal("9.00"), 100),
    ("LAMP-004", "Desk lamp", "Warm light, one per customer is plenty.", Decimal("45.00"), 20),
    ("RARE-005", "Signed poster", "Only a few exist.", Decimal("99.00"), 2),
)


def seed_demo_catalogue(database_url: str) -> int:
    """Insert the demo products when there are none; returns how many were inserted."""
    engine = create_engine(to_sqlalchemy_url(database_url))
    try:
        with engine.begin() as conn:
            if conn.execute(select(func.count()).select_from(t.products)).scalar_one():
                return 0
            for product in DEMO_PRODUCTS:
                add_product(conn, *product)
            return len(DEMO_PRODUCTS)
    finally:
        engine.dispose()
