"""Wallets (/accounts) and the notifications inbox (/notifications)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from common import tables as t
from common.settings import Settings
from tests.functions.api_support import (
    bearer,
    customer,
    problem,
)
from tests.helpers import engine_of

pytestmark = pytest.mark.integration



def test_wallet_create_deposit_and_balance(client: FlaskClient, saga_env: Settings) -> None:
    me = customer()
    headers = bearer(saga_env, me)
    missing = problem(client.post("/accounts/deposit", json={"amount": "5.00"}, headers=headers),
                      404)
    assert "POST /accounts" in missing["detail"]
    problem(client.get("/accounts/me", headers=headers), 404)

    created = client.post("/accounts", headers=headers)
    assert created.status_code == 201
    assert created.get_json() == {"customer_id": me, "balance": "0.00", "frozen": "0.00"}
    problem(client.post("/accounts", headers=headers), 409)

    for amount in ("12.5", "0.10", "1000000.00"):
        response = client.post("/accounts/deposit", json={"amount": amount}, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["balance"] == "1000012.60"

    me_now = client.get("/accounts/me", headers=headers).get_json()
    assert (me_now["balance"], me_now["frozen"]) == ("1000012.60", "0.00")
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in me_now["ledger"]] == [
        ("deposit", "1000000.00", "1000012.60"), ("deposit", "0.10", "12.60"),
        ("deposit", "12.50", "12.50")]
    with engine_of(saga_env).connect() as conn:
        balance: Decimal = conn.execute(select(t.accounts.c.balance)
                               .where(t.accounts.c.customer_id == me)).scalar_one()
    assert balance == Decimal("1000012.60")


@pytest.mark.parametrize("amount", [
    12.5, 10, "0", "0.00", "-1.00", "1.005", "1e3", "NaN", "1000000.01", "", None,
])
def test_deposit_refuses_anything_but_a_positive_decimal_string(
    client: FlaskClient, saga_env: Settings, amount: Any
) -> None:
    me = customer()
    headers = bearer(saga_env, me)
    client.post("/accounts", headers=headers)
    details = problem(client.post("/accounts/deposit", json={"amount": amount}, headers=headers),
                      422)
    assert details["detail"].startswith("amount: ")
    assert client.get("/accounts/me", headers=headers).get_json()["balance"] == "0.00"


def test_notifications_are_mine_newest_first_and_paginated(
    client: FlaskClient, saga_env: Settings
) -> None:
    me = customer()
    start = datetime.now(UTC)
    with engine_of(saga_env).begin() as conn:
        for i, owner in enumerate([me, me, me, customer()]):
            conn.execute(insert(t.notifications).values(
                id=uuid.uuid4(), customer_id=owner, order_id=uuid.uuid4(), kind="order.completed",
                title=f"note {i}", body="your order is complete",
                created_at=start + timedelta(seconds=i)))
    headers = bearer(saga_env, me)
    first = client.get("/notifications?limit=2", headers=headers).get_json()
    assert [n["title"] for n in first["items"]] == ["note 2", "note 1"]
    rest = client.get(f"/notifications?limit=2&cursor={first['next_cursor']}",
                      headers=headers).get_json()
    assert [n["title"] for n in rest["items"]] == ["note 0"] and rest["next_cursor"] is None
