"""The console's operations through its test client, on the real database and broker: a
cancel goes through the state machine and its order.cancelled runs every compensation
(delivered to the real functions); re-drives go through the outbox; bulk operations count
first and run only with the count typed back; every one is idempotent, refused with a clear
message where the state machine or a letter's state refuses it, and audited."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update

from common import tables as t
from common.cloudevents_kafka import event_from_parts
from common.dead_letters import redrive_event
from common.events import catalogue as c
from common.order_state import Status
from common.outbox import Outbox, relay, row_id
from common.pg import tx_in
from common.resources import Resources
from common.settings import Settings
from common.tracing import new_trace
from tests.functions.console_support import OPERATOR, admin, audit_row, console_client, ok
from tests.functions.saga_support import (
    assert_stock_conserved,
    assert_wallet_conserved,
    new_account,
    new_order,
    new_product,
    place_order,
    read_order,
    row,
    rows,
    run_saga,
    stock,
    wallet,
)
from tests.helpers import engine_of, flush_marks

pytestmark = pytest.mark.integration
D = Decimal


def store_letter(settings: Settings, order_id: uuid.UUID, *,
                 event_type: str = c.PAYMENT_REQUESTED, data: bytes | None = None,
                 **fields: Any) -> int:
    """A dead letter as the dlq function stores one: payments refused the event (500)."""
    event_id = str(uuid.uuid4())
    attributes = {"id": event_id, "type": event_type, "source": "/saga/order-saga",
                  "specversion": "1.0", "subject": str(order_id), "partitionkey": str(order_id),
                  "datacontenttype": "application/json", "traceparent":
                  f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
                  "knativeerrordest": "http://payments.order-saga.svc.cluster.local",
                  "knativeerrorcode": "500", "knativeerrordata": "c3RlcCBmYWlsZWQ="}
    body = data if data is not None else json.dumps({
        "order_id": str(order_id), "customer_id": "alice", "amount": "12.50"}).encode()
    values = {"event_id": event_id, "event_type": event_type, "source": "/saga/order-saga",
              "subject": str(order_id), "attributes": attributes, "data": body,
              "error_dest": attributes["knativeerrordest"], "error_code": 500,
              "error_data": "step failed"} | fields
    with engine_of(settings).begin() as conn:
        return int(conn.execute(insert(t.dead_letters).values(**values)
                                .returning(t.dead_letters.c.id)).scalar_one())


def post(settings: Settings, path: str, body: dict[str, Any]) -> Any:
    return console_client().post(f"/console/api{path}", json=body, headers=admin(settings))


def console_events(settings: Settings, order_id: uuid.UUID) -> list[Any]:
    return [event_from_parts(r.attributes, r.data) for r in rows(
        settings, t.outbox, partition_key=str(order_id), producer=c.CONSOLE)]


def test_an_operators_cancel_runs_every_compensation(saga_env: Settings,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Paid, stock reserved, not shipped yet: the operator cancels; inventory releases,
    payments refunds, shipping never ships, notifications tell the customer why."""
    who, sku = new_account(saga_env), new_product(saga_env, 10, price="12.50")
    order, created = place_order(saga_env, who, [(sku, 2, "12.50")])
    [paid] = run_saga(saga_env, created, hold=frozenset({c.ORDER_PAID}))
    assert read_order(saga_env, order.id).status == Status.PAID
    assert wallet(saga_env, who) == (D("75.00"), D("0.00"))

    caplog.set_level(logging.INFO, logger="saga.console")
    done = ok(post(saga_env, f"/orders/{order.id}/cancel", {"why": "customer phoned"}))
    assert (done["outcome"], done["count"], done["order_ids"]) == ("done", 1, [str(order.id)])
    now = read_order(saga_env, order.id)
    assert (now.status, now.reason) == (Status.CANCELLED, "cancelled_by_operator")
    [change] = [r for r in rows(saga_env, t.order_status_history, order_id=order.id)
                if r.to_status == "CANCELLED"]
    assert (change.from_status, change.actor) == ("PAID", f"admin:{OPERATOR}")
    [cancelled] = console_events(saga_env, order.id)
    assert cancelled["type"] == c.ORDER_CANCELLED and cancelled["source"] == "/saga/console"
    assert cancelled.get_data()["reason"] == "cancelled_by_operator"

    run_saga(saga_env, [cancelled, paid])  # the compensations, then the late order.paid
    assert wallet(saga_env, who) == (D("100.00"), D("0.00"))
    assert row(saga_env, t.payments, order_id=order.id).status == "REFUNDED"
    assert stock(saga_env, sku) == (10, 0)
    assert row(saga_env, t.shipments, order_id=order.id).reason == "order_cancelled"
    notes = {r.kind: r.body for r in rows(saga_env, t.notifications, order_id=order.id)}
    assert notes["order.cancelled"].startswith("Our support team cancelled it.")
    assert "payment.refunded" in notes
    assert_wallet_conserved(saga_env, who)
    assert_stock_conserved(saga_env, sku)

    audit = audit_row(saga_env, done["audit_id"])
    assert (audit.actor, audit.action, audit.outcome, audit.why, audit.count) == (
        OPERATOR, "order.cancel", "done", "customer phoned", 1)
    assert audit.order_ids == [order.id]
    [line] = [r for r in caplog.records if getattr(r, "event.action", "") ==
              "saga.console.operation"]
    assert getattr(line, "labels.audit_id") == str(done["audit_id"])
    assert getattr(line, "user.id") == OPERATOR

    shown = ok(console_client().get(f"/console/api/orders/{order.id}", headers=admin(saga_env)))
    assert [a["id"] for a in shown["audit"]] == [done["audit_id"]]
    assert any(e["what"] == "order.cancel (done)" for e in shown["timeline"])


def test_a_cancel_is_idempotent_and_refused_where_the_state_machine_refuses(
        saga_env: Settings) -> None:
    order = new_order(saga_env, status=Status.AWAITING_PAYMENT)
    ok(post(saga_env, f"/orders/{order.id}/cancel", {"why": "duplicate order"}))
    again = ok(post(saga_env, f"/orders/{order.id}/cancel", {"why": "duplicate order"}))
    assert again["outcome"] == "unchanged"
    assert "cancelled already (cancelled_by_operator)" in again["message"]
    assert len(console_events(saga_env, order.id)) == 1  # one order.cancelled, not two

    completed = new_order(saga_env, status=Status.COMPLETED)
    refused = post(saga_env, f"/orders/{completed.id}/cancel", {"why": "too late"})
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    assert "the order is COMPLETED: the state machine allows no cancel" in problem["detail"]
    assert audit_row(saga_env, problem["audit_id"]).outcome == "refused"
    assert read_order(saga_env, completed.id).status == Status.COMPLETED

    assert post(saga_env, f"/orders/{uuid.uuid4()}/cancel", {"why": "x y z"}).status_code == 404
    missing = post(saga_env, f"/orders/{order.id}/cancel", {})
    assert missing.status_code == 422 and missing.get_json()["errors"][0]["field"] == "why"


def test_a_redrive_goes_through_the_outbox(saga_env: Settings) -> None:
    order = new_order(saga_env, status=Status.PAYMENT_PROCESSING)
    letter = store_letter(saga_env, order.id)
    done = ok(post(saga_env, f"/dead-letters/{letter}/redrive", {"why": "payments fixed"}))
    assert (done["outcome"], done["letter_ids"], done["order_ids"]) == (
        "done", [letter], [str(order.id)])
    stored = row(saga_env, t.dead_letters, id=letter)
    assert stored.redriven_at is not None and stored.redrive_count == 1
    flush_marks()  # published rows are marked in the background, by their row ids
    [outbox] = rows(saga_env, t.outbox, partition_key=str(order.id), producer=c.CONSOLE)
    again = event_from_parts(outbox.attributes, outbox.data)
    assert again["id"] == stored.event_id  # the same event: consumers that had it skip it
    assert outbox.id == row_id(again) != uuid.UUID(stored.event_id)
    assert again["sagaredrive"] == f"{letter}.1"
    assert not any(k.startswith("knativeerror") for k in outbox.attributes)
    assert outbox.data == json.loads(stored.data)
    assert outbox.published_at is not None  # published after commit, on the real broker

    refused = post(saga_env, f"/dead-letters/{letter}/redrive", {"why": "once more"})
    assert refused.status_code == 409
    assert f"dead letter {letter} was re-driven already" in refused.get_json()["detail"]
    assert "--force" in refused.get_json()["detail"]


def test_what_an_outbox_cannot_hold_is_refused_naming_the_cli(saga_env: Settings) -> None:
    order = new_order(saga_env)
    garbage = store_letter(saga_env, order.id, data=b"\x00not json")
    odd = store_letter(saga_env, order.id, event_type="dev.example.unknown")
    answer = post(saga_env, f"/orders/{order.id}/redrive", {"why": "try them all"})
    assert answer.status_code == 409
    detail = answer.get_json()["detail"]
    assert f"saga dlq redrive {garbage}" in detail and "not JSON" in detail
    assert f"saga dlq redrive {odd} --topic" in detail
    assert row(saga_env, t.dead_letters, id=garbage).redriven_at is None


def test_a_letter_is_shown_masked_revealed_on_request_and_resolved(saga_env: Settings) -> None:
    order = new_order(saga_env)
    letter = store_letter(saga_env, order.id)
    client, headers = console_client(), admin(saga_env)
    shown = ok(client.get(f"/console/api/dead-letters/{letter}", headers=headers))
    assert shown["masked"] and shown["data"] == {
        "order_id": str(order.id), "customer_id": "*** (5 characters)",
        "amount": "*** (5 characters)"}
    assert "knativeerrorcode" not in shown["attributes"]
    assert (shown["failed_at"], shown["error"]) == ("payments", "step failed")
    revealed = ok(post(saga_env, f"/dead-letters/{letter}/reveal", {"why": "ticket 42"}))
    assert not revealed["masked"] and revealed["data"]["customer_id"] == "alice"
    assert [(a["action"], a["why"]) for a in revealed["audit"]] == [("letter.reveal",
                                                                    "ticket 42")]

    resolved = ok(post(saga_env, f"/dead-letters/{letter}/resolve", {"why": "refunded by hand"}))
    assert resolved["outcome"] == "done" and row(saga_env, t.dead_letters, id=letter).resolved
    again = ok(post(saga_env, f"/dead-letters/{letter}/resolve", {"why": "refunded by hand"}))
    assert again["outcome"] == "unchanged"
    refused = post(saga_env, f"/dead-letters/{letter}/redrive", {"why": "after all"})
    assert refused.status_code == 409 and "is resolved" in refused.get_json()["detail"]
    assert post(saga_env, "/dead-letters/999999999/resolve", {"why": "x y z"}
                ).status_code == 404


def test_bulk_cancel_counts_first_and_runs_only_with_the_count_typed_back(
        saga_env: Settings) -> None:
    who = f"bulk-{uuid.uuid4().hex[:8]}"
    open_orders = [new_order(saga_env, customer=who, status=s) for s in
                   (Status.CREATED, Status.AWAITING_PAYMENT, Status.PAID)]
    ended = new_order(saga_env, customer=who, status=Status.COMPLETED)
    body = {"customer": who, "why": "test customer, clean up"}

    dry = ok(post(saga_env, "/bulk/cancel", body))
    assert (dry["dry_run"], dry["matching"], dry["affected"], dry["confirm"]) == (
        True, 4, 3, "cancel 3")
    assert sorted(dry["sample"]) == sorted(str(o.id) for o in open_orders)
    assert all(read_order(saga_env, o.id).status != Status.CANCELLED for o in open_orders)

    wrong = post(saga_env, "/bulk/cancel", body | {"dry_run": False, "confirm": "cancel 4"})
    assert wrong.status_code == 409
    assert "type 'cancel 3' to confirm" in wrong.get_json()["detail"]
    assert audit_row(saga_env, wrong.get_json()["audit_id"]).outcome == "refused"
    assert all(read_order(saga_env, o.id).status != Status.CANCELLED for o in open_orders)

    done = ok(post(saga_env, "/bulk/cancel", body | {"dry_run": False, "confirm": "cancel 3"}))
    assert (done["affected"], done["result"]["outcome"]) == (3, "done")
    for o in open_orders:
        now = read_order(saga_env, o.id)
        assert (now.status, now.reason) == (Status.CANCELLED, "cancelled_by_operator")
        assert [e["type"] for e in console_events(saga_env, o.id)] == [c.ORDER_CANCELLED]
    assert read_order(saga_env, ended.id).status == Status.COMPLETED
    audit = audit_row(saga_env, done["result"]["audit_id"])
    assert (audit.action, audit.count, audit.filter) == ("orders.cancel", 3, {"customer": who})
    assert sorted(audit.order_ids) == sorted(o.id for o in open_orders)

    after = ok(post(saga_env, "/bulk/cancel", body))
    assert (after["matching"], after["affected"]) == (4, 0)
    nothing = post(saga_env, "/bulk/cancel", body | {"dry_run": False, "confirm": "cancel 0"})
    assert nothing.status_code == 409 and "nothing to cancel" in nothing.get_json()["detail"]


def test_bulk_redrive_of_one_event_type(saga_env: Settings) -> None:
    kind = c.SHIPMENT_FAILED
    order = new_order(saga_env)
    before = ok(post(saga_env, "/bulk/redrive", {"type": kind, "why": "shipping is back"}))
    letters = [store_letter(saga_env, order.id, event_type=kind, data=json.dumps(
        {"order_id": str(order.id), "reason": "carrier down"}).encode()) for _ in range(2)]
    dry = ok(post(saga_env, "/bulk/redrive", {"type": kind, "why": "shipping is back"}))
    assert dry["affected"] == before["affected"] + 2
    done = ok(post(saga_env, "/bulk/redrive", {"type": kind, "why": "shipping is back",
                                              "dry_run": False, "confirm": dry["confirm"]}))
    assert done["result"]["outcome"] == "done"
    assert set(letters) <= set(done["result"]["letter_ids"])
    for letter in letters:
        assert row(saga_env, t.dead_letters, id=letter).redriven_at is not None
    marks = {e["sagaredrive"] for e in console_events(saga_env, order.id)}
    assert marks == {f"{letter}.1" for letter in letters}
    audit = audit_row(saga_env, done["result"]["audit_id"])
    assert (audit.action, audit.filter) == ("letters.redrive", {"type": kind})


def test_the_audit_pages_newest_first(saga_env: Settings) -> None:
    order = new_order(saga_env)
    ids = [ok(post(saga_env, f"/orders/{order.id}/cancel", {"why": f"try {i}"}))["audit_id"]
           for i in range(3)]
    client, headers = console_client(), admin(saga_env)
    first = ok(client.get("/console/api/audit", headers=headers,
                          query_string={"limit": 2, "actor": OPERATOR}))
    assert [a["id"] for a in first["items"]] == ids[:0:-1]
    older = ok(client.get("/console/api/audit", headers=headers, query_string={
        "limit": 2, "actor": OPERATOR, "before": first["next_before"]}))
    assert older["items"][0]["id"] == ids[0]
    assert older["items"][0]["why"] == "try 0"
    with engine_of(saga_env).connect() as conn:
        outcomes: list[str] = list(conn.execute(select(t.audit.c.outcome).where(
            t.audit.c.id.in_(ids)).order_by(t.audit.c.id)).scalars())
    assert outcomes == ["done", "unchanged", "unchanged"]


def test_the_relay_publishes_a_redrive_left_unpublished(saga_env: Settings) -> None:
    """A re-drive's outbox row is found, published and marked by the relay like any other:
    by its own row id, while the original event's row (same event id) stays as it was."""
    order = new_order(saga_env)
    letter_id = store_letter(saga_env, order.id)
    letter = row(saga_env, t.dead_letters, id=letter_id)
    original = Outbox(c.ORDER_SAGA, new_trace())
    original.add(event_from_parts(dict(letter.attributes), json.loads(letter.data)))
    redrive = Outbox(c.CONSOLE, new_trace())
    redrive.add(redrive_event(letter))
    engine = engine_of(saga_env)
    with engine.begin() as conn:
        original.write(tx_in(conn))  # as the order-saga wrote it when it first emitted the event
        conn.execute(update(t.outbox).where(t.outbox.c.id == uuid.UUID(letter.event_id))
                     .values(published_at=func.now() - text("interval '1 hour'")))
        redrive.write(tx_in(conn))
    resources = Resources(saga_env)  # the outbox-relay function's, as its main.py makes them
    try:
        assert relay(resources.pool, resources.publisher, older_than_s=0) >= 1
    finally:
        resources.close()
    rows_by_producer = {r.producer: r for r in rows(saga_env, t.outbox,
                                                    partition_key=str(order.id))}
    assert rows_by_producer[c.CONSOLE].published_at is not None
    assert rows_by_producer[c.CONSOLE].id == row_id(redrive.events[0])
    first = rows_by_producer[c.ORDER_SAGA]
    assert first.id == uuid.UUID(letter.event_id) and first.published_at < datetime.now(UTC) - \
        timedelta(minutes=59)
