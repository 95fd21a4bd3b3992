"""Helpers for the api function's tests (no tests here): a test client of functions/api/main.py,
tokens, and rows set up directly in the database the `saga_env` fixture points at.

Every test keys its rows by fresh customer ids and SKUs, so tests never see each other's data.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from common import tables as t
from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, issue_token
from common.order_state import Status, lock_order, transition
from common.outbox import Outbox
from common.products import add_product
from common.settings import Settings
from common.tracing import new_trace
from tests.helpers import engine_of, flush_marks, function_client, transaction_on
from tools import REPO_ROOT

MAIN = REPO_ROOT / "functions" / "api" / "main.py"

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def api_client() -> FlaskClient:
    """A new api process (its resources closed after the test: tests/helpers.py)."""
    client: FlaskClient = function_client("api", str(MAIN), "http", asgi=False)
    return client


def customer() -> str:
    return f"cust-{uuid.uuid4().hex[:10]}"


def bearer(settings: Settings, subject: str, *, admin: bool = False) -> dict[str, str]:
    roles = [CUSTOMER_ROLE, ADMIN_ROLE] if admin else [CUSTOMER_ROLE]
    return {"Authorization": f"Bearer {issue_token(settings, subject, roles=roles)}"}


def product(settings: Settings, *, price: str = "2.50", on_hand: int = 10) -> str:
    sku = f"T-{uuid.uuid4().hex[:10]}"
    with transaction_on(settings) as tx:
        add_product(tx, sku, "test product", "for a test", Decimal(price), on_hand)
    return sku


def place(client: FlaskClient, headers: dict[str, str], sku: str, **body: Any) -> dict[str, Any]:
    """POST /orders for one unit of `sku`; the new order's JSON."""
    response = client.post("/orders", json={"items": [{"sku": sku, "quantity": 1}], **body},
                           headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    order: dict[str, Any] = response.get_json()
    return order


def count_orders(settings: Settings, customer_id: str) -> int:
    with engine_of(settings).connect() as conn:
        count: int = conn.execute(
            select(func.count()).select_from(t.orders).where(t.orders.c.customer_id == customer_id)
        ).scalar_one()
    return count


def problem(response: Any, status: int) -> dict[str, Any]:
    """The response's problem+json body, after checking it is one with `status`."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status and body["title"]
    return body


def advance(
    settings: Settings, order_id: str, *to: Status, window: timedelta | None = None
) -> None:
    """Move an order along through the state machine, as the saga would."""
    with transaction_on(settings) as tx:
        for status in to:
            order = lock_order(tx, uuid.UUID(order_id))
            assert order is not None
            outbox = Outbox("order-saga", new_trace())
            transition(tx, outbox, order, status, actor="test",
                       payment_window=window if status == Status.AWAITING_PAYMENT else None)
            outbox.write(tx)


def outbox_rows(settings: Settings, order_id: str) -> list[Any]:
    flush_marks()  # published rows are marked in the background (outbox_marks)
    o = t.outbox
    with engine_of(settings).connect() as conn:
        return list(conn.execute(
            select(o.c.id, o.c.event_type, o.c.attributes, o.c.data, o.c.producer,
                   o.c.published_at)
            .where(o.c.partition_key == order_id).order_by(o.c.created_at)
        ).all())
