"""Shared helpers for the saga functions' tests: build CloudEvents, deliver them through
functions-framework's test client, set up rows, read state back, check conservation.

Everything runs against the real PostgreSQL and broker that `saga_env` points at. Rows are
keyed by fresh UUIDs / SKUs / customer ids, so tests never trip over each other's data.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
import yaml
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from sqlalchemy import Connection, func, insert, select, text

from common import tables as t
from common.cloudevents_kafka import event_from_parts
from common.events import catalogue as c
from common.events.models import CancelReason, EventData, OrderLine, PaymentMode
from common.order_state import Order, Status, create_order, lock_order, transition
from common.outbox import Outbox
from common.products import add_product
from common.settings import Settings
from common.tracing import new_trace
from tests.helpers import (
    Reply,
    engine_of,
    event_function_client,
    flush_marks,
    make_event,
    post_event,
    transaction_on,
)
from tools import REPO_ROOT

PING_TYPE = "dev.knative.sources.ping"

# The road from CREATED to each status, for setting an order up where a test needs it.
_ROAD = [Status.AWAITING_PAYMENT, Status.PAYMENT_PROCESSING, Status.PAID, Status.COMPLETED]


# --- delivering events -------------------------------------------------------------------

@cache
def event_client(function: str) -> Any:
    """A test client of the function's own main.py, as Knative would run it. Settings are
    read per event, so one client per function serves every test."""
    return event_function_client(function)


def deliver(function: str, event: CloudEvent) -> Reply:
    reply: Reply = post_event(event_client(function), event)
    return reply


def event(event_type: str, data: EventData, *, source: str = "test") -> CloudEvent:
    return make_event(event_type, data, source=source, order_id=data.order_id)


def ping(**extra: str) -> CloudEvent:
    attributes = {"type": PING_TYPE, "source": "/apis/v1/namespaces/saga/pingsources/test",
                  "id": str(uuid.uuid4()), "datacontenttype": "application/json"} | extra
    return CloudEvent(attributes, {"job": "test"})


def post_raw(function: str, headers: dict[str, str], body: bytes) -> Reply:
    reply: Reply = event_client(function).post("/", headers=headers, data=body)
    return reply


def binary_headers(ev: CloudEvent) -> dict[str, str]:
    headers, _ = to_binary(ev)
    return dict(headers)


def emitted(settings: Settings, producer: str, caused_by: str) -> list[CloudEvent]:
    """The events a delivery wrote to the outbox, in order."""
    with engine_of(settings).connect() as conn:
        rows = conn.execute(
            select(t.outbox.c.attributes, t.outbox.c.data)
            .where(t.outbox.c.producer == producer, t.outbox.c.caused_by == caused_by)
            .order_by(t.outbox.c.created_at, t.outbox.c.id)
        ).all()
    return [event_from_parts(r.attributes, r.data) for r in rows]


def data_of(ev: CloudEvent) -> dict[str, Any]:
    data = ev.get_data()
    assert isinstance(data, dict)
    return data


def types_of(events: Iterable[CloudEvent]) -> list[str]:
    return [str(e["type"]) for e in events]


def step_record(
    caplog: pytest.LogCaptureFixture, event_id: str, action: str = "saga.step.completed"
) -> logging.LogRecord:
    """The first ECS log record with `action` written for `event_id`."""
    records = [r for r in caplog.records if getattr(r, "cloudevents.id", None) == event_id
               and getattr(r, "event.action", None) == action]
    assert records, f"no {action} log line for {event_id}"
    return records[0]


# --- manifests -------------------------------------------------------------------------

def manifest(path: str) -> dict[str, Any]:
    loaded = yaml.safe_load((REPO_ROOT / path).read_text())
    assert isinstance(loaded, dict)
    return loaded


def check_service(function: str) -> None:
    """knative/<function>.yaml: scale to zero, cluster-local, concurrency within the pool."""
    service = manifest(f"knative/{function}.yaml")
    assert (service["kind"], service["metadata"]["name"]) == ("Service", function)
    assert service["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    template = service["spec"]["template"]
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "0"
    [container] = template["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    folder = function.replace("-", "_")
    assert env["FUNCTION_TARGET"] == folder
    assert env["FUNCTION_SOURCE"] == f"functions/{folder}/main.py"
    assert env["FUNCTION_SIGNATURE_TYPE"] == "http"  # CloudEvents over ASGI: event_server
    assert env["FUNCTION_USE_ASGI"] == "true"
    threads = int(env["THREADS"])
    assert template["spec"]["containerConcurrency"] == threads <= int(env["SAGA_DB_POOL_SIZE"])
    refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert refs == {"saga-config", "saga-secrets"}


def check_kafka_source(function: str, handled: Iterable[str]) -> None:
    """kafka-sources/<function>.yaml lists exactly the catalogue's topics for it, which are
    exactly the types its handlers take."""
    source = manifest(f"kafka-sources/{function}.yaml")
    spec = source["spec"]
    assert source["apiVersion"] == "sources.knative.dev/v1beta1"
    assert sorted(spec["topics"]) == c.types_consumed_by(function) == sorted(handled)
    assert spec["consumerGroup"] == f"saga-{function}"
    assert (spec["initialOffset"], spec["ordering"]) == ("earliest", "ordered")
    assert spec["sink"]["ref"]["name"] == function
    assert spec["delivery"]["retry"] > 0
    assert spec["delivery"]["deadLetterSink"]["ref"]["name"] == "saga-dead-letters"


def check_ping_source(function: str) -> None:
    ping_source = manifest(f"knative/{function}-ping.yaml")
    assert (ping_source["apiVersion"], ping_source["kind"]) == (
        "sources.knative.dev/v1", "PingSource")
    assert ping_source["spec"]["schedule"] == "* * * * *"
    assert ping_source["spec"]["sink"]["ref"] == {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": function}


# --- choreography in-process -------------------------------------------------------------

def run_saga(
    settings: Settings, events: Iterable[CloudEvent], *, hold: frozenset[str] = frozenset()
) -> list[CloudEvent]:
    """Deliver `events` to every consumer the catalogue names (as their KafkaSources would),
    then whatever each delivery emitted, until nothing is left. Event types in `hold` are
    not delivered but returned, so a test can deliver them late (a reordering)."""
    queue = list(events)
    held: list[CloudEvent] = []
    while queue:
        ev = queue.pop(0)
        if ev["type"] in hold:
            held.append(ev)
            continue
        for consumer in sorted(c.CATALOGUE[ev["type"]].consumers - {c.API, c.TIMEOUTS}):
            response = deliver(consumer, ev)
            assert response.status_code == 200, (consumer, ev["type"], response.get_data())
            queue.extend(emitted(settings, consumer, ev["id"]))
    return held


def customer_cancels(settings: Settings, order_id: uuid.UUID) -> list[CloudEvent]:
    """What the API does on PUT /orders/{id}/cancel: the transition and its order.cancelled."""
    outbox = Outbox(c.API, new_trace())
    with transaction_on(settings) as tx:
        order = lock_order(tx, order_id)
        assert order is not None
        transition(tx, outbox, order, Status.CANCELLED, actor=c.API,
                   reason="cancelled_by_customer")
    return outbox.events


# --- setting rows up ---------------------------------------------------------------------

def new_product(settings: Settings, on_hand: int, price: str = "2.50") -> str:
    sku = f"T-{uuid.uuid4().hex[:12]}"
    with transaction_on(settings) as tx:
        add_product(tx, sku, "test product", "", Decimal(price), on_hand)
    return sku


def new_account(settings: Settings, balance: str | None = "100.00") -> str:
    """A customer id, with a wallet holding `balance` (one deposit in the ledger) unless
    balance is None."""
    customer = f"cust-{uuid.uuid4().hex[:12]}"
    if balance is not None:
        amount = Decimal(balance)
        with engine_of(settings).begin() as conn:
            conn.execute(insert(t.accounts).values(customer_id=customer, balance=amount))
            if amount > 0:
                conn.execute(insert(t.ledger).values(
                    customer_id=customer, kind="deposit", amount=amount,
                    balance_after=amount, frozen_after=Decimal("0.00")))
    return customer


def new_order(
    settings: Settings,
    *,
    customer: str = "alice",
    lines: list[tuple[str, int, str]] | None = None,
    mode: PaymentMode = "auto",
    address: str = "1 Main Street",
    status: Status = Status.CREATED,
    reason: CancelReason | None = None,
) -> Order:
    """An order (via the state machine) moved along the happy road to `status`, or cancelled
    with `reason` from the road's state `status`. Its own events are not written anywhere."""
    order_lines = [OrderLine(sku=s, quantity=q, unit_price=Decimal(p))
                   for s, q, p in (lines or [("SKU-X", 1, "10.00")])]
    scratch = Outbox("test", new_trace())
    with transaction_on(settings) as tx:
        order = create_order(tx, scratch, order_id=uuid.uuid4(), customer_id=customer,
                             lines=order_lines, payment_mode=mode, shipping_address=address,
                             actor="test")
        for step in _ROAD[: _ROAD.index(status) + 1] if status in _ROAD else []:
            order = transition(tx, scratch, order, step, actor="test",
                               payment_window=timedelta(minutes=5))
        if reason is not None:
            order = transition(tx, scratch, order, Status.CANCELLED, actor="test",
                               reason=reason)
    return order


def place_order(
    settings: Settings, customer: str, lines: list[tuple[str, int, str]], *,
    mode: PaymentMode = "auto", address: str = "1 Main Street",
) -> tuple[Order, list[CloudEvent]]:
    """What the API does on POST /orders: the order in CREATED and its order.created."""
    outbox = Outbox(c.API, new_trace())
    order_lines = [OrderLine(sku=s, quantity=q, unit_price=Decimal(p)) for s, q, p in lines]
    with transaction_on(settings) as tx:
        order = create_order(tx, outbox, order_id=uuid.uuid4(), customer_id=customer,
                             lines=order_lines, payment_mode=mode, shipping_address=address,
                             actor=c.API)
    return order, outbox.events


def sql(settings: Settings, statement: str, **params: Any) -> None:
    with engine_of(settings).begin() as conn:
        conn.execute(text(statement), params)


# --- reading state -----------------------------------------------------------------------

def read_order(settings: Settings, order_id: uuid.UUID) -> Order:
    with transaction_on(settings) as tx:
        order = lock_order(tx, order_id)
    assert order is not None
    return order


def row(settings: Settings, table: Any, **where: Any) -> Any:
    with engine_of(settings).connect() as conn:
        return conn.execute(
            select(table).where(*(table.c[k] == v for k, v in where.items()))
        ).first()


def rows(settings: Settings, table: Any, **where: Any) -> list[Any]:
    flush_marks()  # published outbox rows are marked in the background (outbox_marks)
    with engine_of(settings).connect() as conn:
        return list(conn.execute(
            select(table).where(*(table.c[k] == v for k, v in where.items()))
        ).all())


def stock(settings: Settings, sku: str) -> tuple[int, int]:
    r = row(settings, t.stock, sku=sku)
    return r.on_hand, r.reserved


def wallet(settings: Settings, customer: str) -> tuple[Decimal, Decimal]:
    r = row(settings, t.accounts, customer_id=customer)
    return r.balance, r.frozen


def inbox_has(settings: Settings, consumer: str, event_id: str) -> bool:
    return row(settings, t.inbox, consumer=consumer, event_id=event_id) is not None


# --- conservation ------------------------------------------------------------------------

def assert_wallet_conserved(settings: Settings, customer: str) -> None:
    """deposits - captured + refunded = balance + frozen, from the ledger; and the ledger's
    last balances are the account's."""
    with engine_of(settings).connect() as conn:
        sums: dict[str, Decimal] = {
            str(r[0]): Decimal(r[1]) for r in conn.execute(
                select(t.ledger.c.kind, func.sum(t.ledger.c.amount))
                .where(t.ledger.c.customer_id == customer).group_by(t.ledger.c.kind)
            ).all()
        }
        last = conn.execute(
            select(t.ledger.c.balance_after, t.ledger.c.frozen_after)
            .where(t.ledger.c.customer_id == customer).order_by(t.ledger.c.id.desc()).limit(1)
        ).first()
    balance, frozen = wallet(settings, customer)
    zero = Decimal("0.00")
    assert balance >= 0 and frozen >= 0
    assert (sums.get("deposit", zero) - sums.get("capture", zero) + sums.get("refund", zero)
            == balance + frozen), (customer, sums, balance, frozen)
    if last is not None:
        assert (last.balance_after, last.frozen_after) == (balance, frozen)


def assert_stock_conserved(settings: Settings, sku: str) -> None:
    """initial + restocks = on_hand + committed - returned; the movements add up to the
    stock row."""
    with engine_of(settings).connect() as conn:
        moves = _movement_sums(conn, sku)
    on_hand, reserved = stock(settings, sku)
    initial = moves.get("initial", (0, 0))[0] + moves.get("restock", (0, 0))[0]
    committed = -moves.get("commit", (0, 0))[0]
    returned = moves.get("return", (0, 0))[0]
    assert initial == on_hand + committed - returned, (sku, moves, on_hand)
    assert sum(d for d, _ in moves.values()) == on_hand
    assert sum(r for _, r in moves.values()) == reserved
    assert 0 <= reserved <= on_hand


def _movement_sums(conn: Connection, sku: str) -> dict[str, tuple[int, int]]:
    result = conn.execute(
        select(t.stock_movements.c.kind, func.sum(t.stock_movements.c.delta_on_hand),
               func.sum(t.stock_movements.c.delta_reserved))
        .where(t.stock_movements.c.sku == sku).group_by(t.stock_movements.c.kind)
    ).all()
    return {str(r[0]): (int(r[1]), int(r[2])) for r in result}


