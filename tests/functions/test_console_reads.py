"""The console function's reading side through its test client, on the real database:
who may use it (admins only, on every URL), the page and its OpenAPI document, Find with
every filter and its cursor, the overview's counts, stuck orders with why, and one order
whole after a saga ran through the real functions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from common.events import catalogue as c
from common.events.models import OrderCompleted
from common.order_state import Status
from common.resources import Resources
from common.settings import Settings
from functions.console import runtime_view
from functions.console.routes import LETTER, ROUTES
from tests.functions.console_support import admin, console_client, customer, ok
from tests.functions.saga_support import (
    new_account,
    new_order,
    new_product,
    place_order,
    run_saga,
    sql,
)
from tests.functions.test_console_operations import store_letter
from tests.helpers import flush_marks, make_event

pytestmark = pytest.mark.integration


def _url(path: str) -> str:
    return (path.replace("<uuid:order_id>", str(uuid.uuid4())).replace(LETTER, "1")
            .replace("<name>", "console.js"))


def test_every_url_is_for_admins_only(saga_env: Settings) -> None:
    client = console_client()
    for route in ROUTES.routes:
        call = client.post if route.method == "POST" else client.get
        url = _url(route.path)
        refused = call(url, headers=customer(saga_env), json={"why": "checking"})
        assert refused.status_code == 403, (url, refused.get_data(as_text=True))
        assert refused.mimetype == "application/problem+json"
        assert "admin role" in refused.get_json()["detail"]
        anonymous = call(url, json={"why": "checking"})
        if route.public:
            assert anonymous.status_code == 200, url
        else:
            assert anonymous.status_code == 401, url
            assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    forged = {"Authorization": "Bearer " + admin(saga_env)["Authorization"][7:-4] + "AAAA"}
    assert client.get("/console/api/overview", headers=forged).status_code == 401


def test_the_page_is_served_by_the_function_without_any_cdn(saga_env: Settings) -> None:
    client = console_client()
    page = client.get("/console")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert '<script src="/console/assets/console.js">' in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        asset = client.get(f"/console/assets/{name}")
        assert asset.status_code == 200 and asset.mimetype == kind
    assert client.get("/console/assets/main.py").status_code == 404
    assert client.get("/console/assets/..%2Fmain.py").status_code == 404


def test_the_openapi_document_tags_every_operation_console(saga_env: Settings) -> None:
    document = ok(console_client().get("/console/openapi.json"))
    validate(document)
    operations = [(path, method, op) for path, ops in document["paths"].items()
                  for method, op in ops.items()]
    assert {op["tags"][0] for _, _, op in operations} == {"console"}
    documented = {(method.upper(), path) for path, method, _ in operations}
    served = {(r.method, r.path.replace("<uuid:order_id>", "{order_id}")
               .replace(LETTER, "{letter_id}")) for r in ROUTES.routes if not r.hidden}
    assert documented == served
    cancel = document["paths"]["/console/api/orders/{order_id}/cancel"]["post"]
    assert cancel["security"] == [{"bearerAuth": []}]
    assert {"401", "403", "404", "409", "422"} <= set(cancel["responses"])


def _find(settings: Settings, **query: Any) -> dict[str, Any]:
    answer: dict[str, Any] = ok(console_client().get("/console/api/orders", query_string=query,
                                                     headers=admin(settings)))
    return answer


def test_find_filters_and_pages_by_cursor(saga_env: Settings) -> None:
    who = f"find-{uuid.uuid4().hex[:8]}"
    a, b = new_product(saga_env, 10), new_product(saga_env, 10)
    orders = [new_order(saga_env, customer=who, lines=[(a, 1, "1.00")]),
              new_order(saga_env, customer=who, lines=[(b, 1, "1.00")], status=Status.PAID),
              new_order(saga_env, customer=who, lines=[(a, 1, "1.00"), (b, 1, "1.00")],
                        status=Status.AWAITING_PAYMENT, reason="payment_timeout"),
              new_order(saga_env, customer=who, lines=[(b, 1, "1.00")],
                        status=Status.COMPLETED)]
    ids = [str(o.id) for o in orders]

    def found(**query: Any) -> list[str]:
        return [o["id"] for o in _find(saga_env, customer=who, **query)["items"]]

    assert found() == ids[::-1]  # newest first
    first = _find(saga_env, customer=who, limit=3)
    rest = _find(saga_env, customer=who, limit=3, cursor=first["next_cursor"])
    assert [o["id"] for o in first["items"] + rest["items"]] == ids[::-1]
    assert rest["next_cursor"] is None
    assert found(status="open") == [ids[1], ids[0]]
    assert found(status="PAID,COMPLETED") == [ids[3], ids[1]]
    assert found(reason="payment_timeout") == [ids[2]]
    assert found(sku=a) == [ids[2], ids[0]]
    assert found(id=ids[2][:8]) == [ids[2]]
    assert found(id=ids[2]) == [ids[2]]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert found(since=tomorrow) == [] and found(until=tomorrow) == ids[::-1]
    assert found(older_than_s=3600) == []

    client, headers = console_client(), admin(saga_env)
    for query, field in (({"status": "LOST"}, "status"), ({"id": "abc"}, "id"),
                         ({"cursor": "not-one"}, "cursor"), ({"limit": 0}, "limit"),
                         ({"since": "yesterday"}, "since")):
        refused = client.get("/console/api/orders", query_string=query, headers=headers)
        assert refused.status_code == 422, query
        assert refused.get_json()["errors"][0]["field"] == field


def test_the_overview_counts_orders_the_last_hour_and_waiting_letters(
        saga_env: Settings) -> None:
    def overview() -> dict[str, Any]:
        answer: dict[str, Any] = ok(console_client().get("/console/api/overview",
                                                         headers=admin(saga_env)))
        return answer

    before = overview()
    order = new_order(saga_env, customer=f"ov-{uuid.uuid4().hex[:8]}",
                      status=Status.AWAITING_PAYMENT, reason="cancelled_by_customer")
    store_letter(saga_env, order.id)
    after = overview()
    assert after["orders"] == before["orders"] + 1
    assert after["by_status"]["CANCELLED"] == before["by_status"]["CANCELLED"] + 1
    assert after["by_group"]["cancelled"] == before["by_group"]["cancelled"] + 1
    assert (after["cancelled_by_reason"]["cancelled_by_customer"]
            == before["cancelled_by_reason"].get("cancelled_by_customer", 0) + 1)
    assert len(after["last_hour"]) == 60
    assert (sum(m["placed"] for m in after["last_hour"])
            == sum(m["placed"] for m in before["last_hour"]) + 1)
    assert after["dead_letters_waiting"] == before["dead_letters_waiting"] + 1
    tables = {row["table"]: row for row in after["tables"]}
    assert set(tables) == {"messaging.inbox", "messaging.outbox", "messaging.dead_letters",
                           "orders.idempotency_keys"}, tables
    letters = tables["messaging.dead_letters"]
    assert letters["rows"] >= 1 and letters["bytes"] > 0 and letters["oldest"], letters


def test_stuck_orders_come_with_why(saga_env: Settings) -> None:
    who = f"stuck-{uuid.uuid4().hex[:8]}"
    fresh = new_order(saga_env, customer=who)
    expired = new_order(saga_env, customer=who, status=Status.AWAITING_PAYMENT)
    idle = new_order(saga_env, customer=who, status=Status.PAYMENT_PROCESSING)
    lettered = new_order(saga_env, customer=who, status=Status.COMPLETED)
    sql(saga_env, "UPDATE orders.orders SET payment_deadline = now() - interval '10 min' "
        "WHERE id = :id", id=expired.id)
    sql(saga_env, "UPDATE orders.orders SET updated_at = now() - interval '5 min' "
        "WHERE id = :id", id=idle.id)
    letter = store_letter(saga_env, lettered.id)

    def stuck(older_than_s: int) -> dict[str, list[str]]:
        page = ok(console_client().get("/console/api/stuck", headers=admin(saga_env),
                                       query_string={"older_than_s": older_than_s}))
        return {item["order"]["id"]: item["why"] for item in page["items"]
                if item["order"]["customer_id"] == who}

    hour = stuck(3600)
    assert set(hour) == {str(expired.id), str(idle.id), str(lettered.id)}
    assert "payment window closed 10 min ago" in hour[str(expired.id)][0]
    assert hour[str(idle.id)][0].startswith("PAYMENT_PROCESSING for 5 min")
    assert hour[str(lettered.id)] == [
        f"dead letter {letter} waiting: shop.payment.requested.v1 failed at payments "
        "(HTTP 500)"]
    now = stuck(0)
    assert now[str(fresh.id)][0].startswith("open for ")
    default = ok(console_client().get("/console/api/stuck", headers=admin(saga_env)))
    assert default["older_than_s"] == saga_env.stuck_after_s


def test_one_order_whole_after_its_saga(saga_env: Settings,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGA_KIBANA_URL", "https://kibana.example:5601/")
    who, sku = new_account(saga_env), new_product(saga_env, 5, price="3.00")
    order, created = place_order(saga_env, who, [(sku, 2, "3.00")])
    run_saga(saga_env, created)
    flush_marks()  # published rows are marked published in the background (outbox_marks)
    detail = ok(console_client().get(f"/console/api/orders/{order.id}",
                                     headers=admin(saga_env)))
    assert detail["order"]["status"] == "COMPLETED" and detail["cancel_refused"]
    assert detail["items"] == [{"sku": sku, "quantity": 2, "unit_price": "3.00"}]
    changes = [e["what"] for e in detail["timeline"] if e["what"].startswith("status")]
    assert changes == ["status new -> CREATED", "status CREATED -> AWAITING_PAYMENT",
                       "status AWAITING_PAYMENT -> PAYMENT_PROCESSING",
                       "status PAYMENT_PROCESSING -> PAID", "status PAID -> COMPLETED"]
    # The harness hands order.created over without an outbox row; the saga's own are there.
    first = detail["events"][0]
    assert (first["type"], first["producer"]) == ("shop.stock.reserved.v1", "inventory")
    assert first["published_after_ms"] is not None  # the step published it after commit
    [handled] = first["handled"]
    assert (handled["function"], handled["outcome"]) == ("order-saga", "handled")
    assert handled["latency_ms"] is not None and handled["latency_ms"] >= 0
    effects = detail["effects"]
    assert (effects["reservation"], effects["payment"], effects["shipment"]) == (
        "COMMITTED", "CAPTURED", "DISPATCHED")
    assert [m["kind"] for m in effects["stock_movements"]] == ["reserve", "commit"]
    assert [e["kind"] for e in effects["ledger"]] == ["freeze", "capture"]
    assert effects["notifications"] == [f"Order {str(order.id)[:8]} is on its way"]
    assert detail["traces"] and detail["kibana"]["query"] == f'labels.order_id : "{order.id}"'
    assert detail["kibana"]["url"].startswith("https://kibana.example:5601/app/discover#/?")
    assert str(order.id) in detail["kibana"]["url"]
    missing = console_client().get(f"/console/api/orders/{uuid.uuid4()}",
                                   headers=admin(saga_env))
    assert missing.status_code == 404


def test_dead_letters_page_newest_first(saga_env: Settings) -> None:
    order = new_order(saga_env, customer=f"aud-{uuid.uuid4().hex[:8]}")
    letters = [store_letter(saga_env, order.id) for _ in range(3)]
    client, headers = console_client(), admin(saga_env)
    page = ok(client.get("/console/api/dead-letters", headers=headers,
                         query_string={"limit": 2}))
    assert [item["id"] for item in page["items"]] == letters[:0:-1]
    older = ok(client.get("/console/api/dead-letters", headers=headers,
                          query_string={"limit": 2, "before": page["next_before"]}))
    assert older["items"][0]["id"] == letters[0]
    assert page["items"][0]["order_id"] == str(order.id)


def test_lag_per_kafka_source_comes_from_the_broker(
        saga_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runtime_view, "CACHE_S", 0.0)
    # As `./taskw up` sets it, but no runtime wrote the file.
    monkeypatch.setenv("SAGA_RUNTIME_STATE_FILE", str(tmp_path / "runtime-state.json"))

    def lag() -> dict[str, Any]:
        runtime = ok(console_client().get("/console/api/runtime", headers=admin(saga_env)))
        assert runtime["lag_note"] is None
        assert runtime["functions"] == [] and "runtime-state.json" in runtime["functions_note"]
        return {s["source"]: s for s in runtime["sources"]}

    before = lag()
    assert set(before) == {"inventory", "payments", "shipping", "order-saga",
                           "notifications", "dlq"}
    assert before["order-saga"]["consumer_group"] == "saga-order-saga"
    assert all(s["partitions"] > 0 and s["lag"] >= 0 for s in before.values())
    # No KafkaSource consumes here: an event published is lag of the source that reads it.
    order_id = uuid.uuid4()
    event = make_event(c.ORDER_COMPLETED, OrderCompleted(order_id=order_id, customer_id="x"),
                       order_id=order_id)
    resources = Resources(saga_env)
    try:
        assert resources.publisher.produce([event]) == [event["id"]]
    finally:
        resources.close()
    after = lag()
    assert after["notifications"]["lag"] == before["notifications"]["lag"] + 1
    assert after["inventory"]["lag"] == before["inventory"]["lag"]
