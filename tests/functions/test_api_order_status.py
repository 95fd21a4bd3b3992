"""Status changes through the API: customer cancel, admin transitions, confirm-mode pay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from common.order_state import Status
from common.settings import Settings
from tests.functions.api_support import (
    TRACE_ID,
    TRACEPARENT,
    advance,
    bearer,
    customer,
    outbox_rows,
    place,
    problem,
    product,
)

pytestmark = pytest.mark.integration



def test_customer_cancels_before_payment_and_not_after(
    client: FlaskClient, saga_env: Settings
) -> None:
    me, sku = customer(), product(saga_env)
    headers = bearer(saga_env, me)
    order = place(client, headers, sku)
    response = client.put(f"/orders/{order['id']}", json={"status": "CANCELLED"}, headers=headers)
    assert response.status_code == 200
    cancelled = response.get_json()
    assert cancelled["status"] == "CANCELLED" and cancelled["reason"] == "cancelled_by_customer"
    assert cancelled["timeline"][-1] | {"at": None} == {
        "from_status": "CREATED", "to_status": "CANCELLED", "reason": "cancelled_by_customer",
        "actor": f"customer:{me}", "at": None}
    events = [r for r in outbox_rows(saga_env, order["id"]) if r.producer == "api"]
    assert [r.event_type for r in events] == ["shop.order.created.v1", "shop.order.cancelled.v1"]
    assert events[1].data["reason"] == "cancelled_by_customer"
    # Cancelling again changes nothing and emits nothing (PUT is idempotent).
    assert client.put(f"/orders/{order['id']}", json={"status": "CANCELLED"},
                      headers=headers).status_code == 200
    assert len(outbox_rows(saga_env, order["id"])) == 2

    paid = place(client, headers, sku)
    advance(saga_env, paid["id"], Status.AWAITING_PAYMENT, Status.PAYMENT_PROCESSING, Status.PAID)
    refused = problem(client.put(f"/orders/{paid['id']}", json={"status": "CANCELLED"},
                                 headers=headers), 409)
    assert "paid" in refused["detail"] and "shipping" in refused["detail"]
    problem(client.put(f"/orders/{paid['id']}", json={"status": "COMPLETED"}, headers=headers),
            403)


def test_admin_applies_legal_transitions_only(client: FlaskClient, saga_env: Settings) -> None:
    order = place(client, bearer(saga_env, customer()), product(saga_env))
    admin = bearer(saga_env, "ops", admin=True)
    path = f"/orders/{order['id']}"
    problem(client.put(path, json={"status": "PAID"}, headers=admin), 409)
    moved = client.put(path, json={"status": "AWAITING_PAYMENT"}, headers=admin).get_json()
    assert moved["status"] == "AWAITING_PAYMENT"
    done = client.put(path, json={"status": "CANCELLED", "reason": "out_of_stock"}, headers=admin)
    assert done.get_json()["reason"] == "out_of_stock"
    assert done.get_json()["timeline"][-1]["actor"] == "admin:ops"
    problem(client.put(path, json={"status": "COMPLETED"}, headers=admin), 409)


def test_pay_within_the_window_only_in_confirm_mode(
    client: FlaskClient, saga_env: Settings
) -> None:
    me, sku = customer(), product(saga_env)
    headers = bearer(saga_env, me)
    order = place(client, headers, sku, payment_mode="confirm")
    problem(client.post(f"/orders/{order['id']}/pay", headers=headers), 409)  # still CREATED
    advance(saga_env, order["id"], Status.AWAITING_PAYMENT, window=timedelta(minutes=5))
    response = client.post(f"/orders/{order['id']}/pay", headers=headers | {
        "traceparent": TRACEPARENT})
    assert response.status_code == 202
    assert response.get_json()["status"] == "PAYMENT_PROCESSING"
    requested = [r for r in outbox_rows(saga_env, order["id"])
                 if r.event_type == "shop.payment.requested.v1"]
    assert len(requested) == 1 and requested[0].data["amount"] == "2.50"
    assert requested[0].attributes["traceparent"].startswith(f"00-{TRACE_ID}-")
    problem(client.post(f"/orders/{order['id']}/pay", headers=headers), 409)  # not twice

    late = place(client, headers, sku, payment_mode="confirm")
    advance(saga_env, late["id"], Status.AWAITING_PAYMENT, window=timedelta(seconds=-1))
    assert "window" in problem(client.post(f"/orders/{late['id']}/pay", headers=headers),
                               409)["detail"]
    auto = place(client, headers, sku)
    advance(saga_env, auto["id"], Status.AWAITING_PAYMENT, window=timedelta(minutes=5))
    assert "auto" in problem(client.post(f"/orders/{auto['id']}/pay", headers=headers),
                             409)["detail"]
