"""POST /orders (validation, pricing, the outbox), GET one and GET the list, through
functions-framework's test client against a real PostgreSQL (and the broker when saga_env
provides one)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from common.settings import Settings
from tests.functions.api_support import (
    TRACE_ID,
    TRACEPARENT,
    bearer,
    customer,
    outbox_rows,
    place,
    problem,
    product,
)
from tests.functions.saga_support import read_order
from tests.helpers import read_topic

pytestmark = pytest.mark.integration



def test_create_order_commits_order_history_and_traced_event(
    client: FlaskClient, saga_env: Settings
) -> None:
    sku, other = product(saga_env, price="2.50"), product(saga_env, price="10.00")
    me = customer()
    lines = [{"sku": sku, "quantity": 2}, {"sku": other, "quantity": 1},
             {"sku": sku, "quantity": 1}]
    response = client.post("/orders", headers=bearer(saga_env, me) | {"traceparent": TRACEPARENT},
                           json={"items": lines, "shipping_address": "1 Main St"})
    assert response.status_code == 201
    order = response.get_json()
    assert response.headers["Location"] == f"/orders/{order['id']}"
    assert order["status"] == "CREATED" and order["status_group"] == "created"
    assert order["customer_id"] == me and order["payment_mode"] == "auto"
    # Duplicate SKUs are merged; money is a decimal string.
    assert {i["sku"]: (i["quantity"], i["unit_price"]) for i in order["items"]} == {
        sku: (3, "2.50"), other: (1, "10.00")}
    assert order["total"] == "17.50"

    rows = outbox_rows(saga_env, order["id"])
    assert [r.event_type for r in rows] == ["shop.order.created.v1"]
    created = rows[0]
    assert created.producer == "api"
    assert created.attributes["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert created.data["total"] == "17.50" and created.data["customer_id"] == me
    # The order keeps the request's span as its own trace context; the event is its child.
    kept = read_order(saga_env, uuid.UUID(order["id"])).trace
    assert kept is not None and kept.trace_id == TRACE_ID
    assert not created.attributes["traceparent"].startswith(f"00-{TRACE_ID}-{kept.span_id}")
    # Published after commit, with the trace and the order id as the record key.
    event = read_topic(saga_env, "shop.order.created.v1",
                       lambda e: e["id"] == str(created.id), timeout=10)
    assert event["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert event["partitionkey"] == order["id"]
    assert outbox_rows(saga_env, order["id"])[0].published_at is not None

    detail = client.get(f"/orders/{order['id']}", headers=bearer(saga_env, me)).get_json()
    assert [(e["from_status"], e["to_status"]) for e in detail["timeline"]] == [(None, "CREATED")]
    assert detail["shipping_address"] == "1 Main St"


@pytest.mark.parametrize(("body", "field"), [
    ({"items": [{"sku": "X-1", "quantity": 0}]}, "items.0.quantity"),
    ({"items": [{"sku": "X-1", "quantity": 1}, {"sku": "X-2", "quantity": "many"}]},
     "items.1.quantity"),
    ({"items": []}, "items"),
    ({}, "items"),
    ({"items": [{"sku": "X-1", "quantity": 1}], "payment_mode": "later"}, "payment_mode"),
    ({"items": [{"sku": "bad sku!", "quantity": 1}]}, "items.0.sku"),
    ({"items": [{"sku": "X-1", "quantity": 1, "colour": "red"}]}, "items.0.colour"),
    ([1, 2], "body"),
])
def test_invalid_bodies_name_the_field(
    client: FlaskClient, saga_env: Settings, body: Any, field: str
) -> None:
    response = client.post("/orders", json=body, headers=bearer(saga_env, customer()))
    details = problem(response, 422)
    assert details["detail"].startswith(f"{field}: ")
    assert details["errors"][0]["field"] == field


def test_unknown_sku_is_422_naming_the_line(client: FlaskClient, saga_env: Settings) -> None:
    sku = product(saga_env)
    response = client.post("/orders", headers=bearer(saga_env, customer()), json={
        "items": [{"sku": sku, "quantity": 1}, {"sku": "NOPE-404", "quantity": 1}]})
    assert problem(response, 422)["detail"] == "items.1.sku: unknown SKU 'NOPE-404'"


def test_malformed_oversized_and_non_json_bodies(client: FlaskClient, saga_env: Settings) -> None:
    headers = bearer(saga_env, customer())
    problem(client.post("/orders", data="{not json", headers=headers,
                        content_type="application/json"), 400)
    problem(client.post("/orders", data="items=1", headers=headers,
                        content_type="application/x-www-form-urlencoded"), 415)
    problem(client.post("/orders", data="x" * (65 * 1024), headers=headers,
                        content_type="application/json"), 413)


def test_someone_elses_order_is_not_found_but_an_admin_sees_it(
    client: FlaskClient, saga_env: Settings
) -> None:
    owner = customer()
    order = place(client, bearer(saga_env, owner), product(saga_env))
    path = f"/orders/{order['id']}"
    problem(client.get(path, headers=bearer(saga_env, customer())), 404)
    problem(client.put(path, json={"status": "CANCELLED"}, headers=bearer(saga_env, customer())),
            404)
    problem(client.post(f"{path}/pay", headers=bearer(saga_env, customer())), 404)
    problem(client.get("/orders/not-a-uuid", headers=bearer(saga_env, owner)), 404)
    problem(client.get(f"/orders/{uuid.uuid4()}", headers=bearer(saga_env, owner)), 404)
    seen = client.get(path, headers=bearer(saga_env, "ops", admin=True))
    assert seen.status_code == 200 and seen.get_json()["customer_id"] == owner


def test_list_my_orders_newest_first_paginated_and_filtered(
    client: FlaskClient, saga_env: Settings
) -> None:
    me, sku = customer(), product(saga_env)
    headers = bearer(saga_env, me)
    ids = [place(client, headers, sku)["id"] for _ in range(3)]
    place(client, bearer(saga_env, customer()), sku)  # someone else's: never listed
    client.put(f"/orders/{ids[0]}", json={"status": "CANCELLED"}, headers=headers)

    first = client.get("/orders?limit=2", headers=headers).get_json()
    assert [o["id"] for o in first["items"]] == [ids[2], ids[1]]
    second = client.get(f"/orders?limit=2&cursor={first['next_cursor']}", headers=headers)
    assert [o["id"] for o in second.get_json()["items"]] == [ids[0]]
    assert second.get_json()["next_cursor"] is None
    cancelled = client.get("/orders?status=CANCELLED", headers=headers).get_json()
    assert [o["id"] for o in cancelled["items"]] == [ids[0]]
    assert problem(client.get("/orders?limit=101", headers=headers), 422)["detail"].startswith(
        "limit: ")
    assert problem(client.get("/orders?cursor=garbage", headers=headers), 422)[
        "errors"][0]["field"] == "cursor"
