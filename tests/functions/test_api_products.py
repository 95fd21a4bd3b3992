"""The catalogue (/products): public list, admin create and restock."""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from common import tables as t
from common.settings import Settings
from tests.functions.api_support import (
    bearer,
    problem,
)
from tests.helpers import engine_of

pytestmark = pytest.mark.integration



def test_admin_creates_and_restocks_products(client: FlaskClient, saga_env: Settings) -> None:
    admin = bearer(saga_env, "ops", admin=True)
    sku = f"P-{uuid.uuid4().hex[:8]}"
    body = {"sku": sku, "name": "Mug", "description": "Enamel", "price": "12.50",
            "initial_stock": 5}
    created = client.post("/products", json=body, headers=admin)
    assert created.status_code == 201
    assert created.get_json() == {"sku": sku, "name": "Mug", "description": "Enamel",
                                  "price": "12.50", "available": 5}
    problem(client.post("/products", json=body, headers=admin), 409)
    problem(client.post("/products", json=body | {"sku": "X-2", "price": 12.5}, headers=admin),
            422)

    restocked = client.post(f"/products/{sku}/restock", json={"quantity": 7}, headers=admin)
    assert restocked.status_code == 200 and restocked.get_json()["available"] == 12
    problem(client.post(f"/products/{sku}/restock", json={"quantity": 0}, headers=admin), 422)
    problem(client.post("/products/NOPE-1/restock", json={"quantity": 1}, headers=admin), 404)
    with engine_of(saga_env).connect() as conn:
        moves = conn.execute(
            select(t.stock_movements.c.kind, t.stock_movements.c.delta_on_hand)
            .where(t.stock_movements.c.sku == sku).order_by(t.stock_movements.c.id)).all()
    assert [tuple(m) for m in moves] == [("initial", 5), ("restock", 7)]


def test_public_list_is_paginated(client: FlaskClient, saga_env: Settings) -> None:
    admin = bearer(saga_env, "ops", admin=True)
    prefix = f"L{uuid.uuid4().hex[:6]}"
    for i in range(3):
        client.post("/products", json={"sku": f"{prefix}-{i}", "name": f"n{i}",
                                       "price": "1.00"}, headers=admin)
    seen: list[str] = []
    cursor = None
    while True:  # walk every page; ours are among them, in SKU order
        query = "/products?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query).get_json()
        assert len(page["items"]) <= 2
        seen += [p["sku"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen)
    assert [s for s in seen if s.startswith(prefix)] == [f"{prefix}-{i}" for i in range(3)]
    problem(client.get("/products?limit=0"), 422)
