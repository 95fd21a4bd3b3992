"""A day in the shop on the image: every Service runs from it, the test plays the cluster's
sources between them (shop.py), and each function writes its rows and outbox events to the
session's PostgreSQL and broker: an order placed through the api travels to completed, a
confirm-mode order times out (timeouts), a refused event becomes a dead letter (dlq), a
stranded outbox row is published (outbox-relay). At the end every function a source
delivers to has answered, and only the refusal was one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping

import pytest
from cloudevents.http import CloudEvent
from sqlalchemy import select, text

from common import tables as t
from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, issue_token
from common.events import catalogue as c
from common.events.models import OrderCompleted
from common.outbox import Outbox
from common.settings import Settings
from common.tracing import new_trace
from tests.helpers import engine_of, read_topic, transaction_on, wait_for
from tests.image.conftest import running
from tests.image.shop import Shop
from tools.image.process import ImageProcess, ImageProcessError
from tools.image.workloads import Workload
from tools.runtime.eventing.dead_letters import error_extensions
from tools.runtime.eventing.delivery import Response

SETTINGS_KEYS = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")


@pytest.fixture
def shop(pods: Mapping[str, ImageProcess | ImageProcessError],
         services: Mapping[str, Workload]) -> Iterator[Shop]:
    """The shop, and the test's Settings: the api pod's own environment, so the tokens the
    test issues are the ones the api accepts."""
    started = {name: running(pods, name) for name in pods}
    env = services["api"].container.env
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            if key.startswith("SAGA_") or key in SETTINGS_KEYS:
                patch.setenv(key, value)
        settings = Settings()
    yield Shop(started, settings)


def _order(shop: Shop, token: str, sku: str, mode: str) -> str:
    status, order = shop.api("POST", "/orders", token=token,
                             headers={"Idempotency-Key": str(uuid.uuid4())},
                             body={"items": [{"sku": sku, "quantity": 1}],
                                   "payment_mode": mode, "shipping_address": "1 Main Street"})
    assert status == 201, order
    return str(order["id"])


def _status(shop: Shop, token: str, order_id: str) -> str:
    status, order = shop.api("GET", f"/orders/{order_id}", token=token)
    assert status == 200, order
    return str(order["status"])


def _inbox(shop: Shop, consumer: str, event_id: str) -> bool:
    with engine_of(shop.settings).connect() as conn:
        return conn.execute(select(t.inbox.c.event_id).where(
            t.inbox.c.consumer == consumer, t.inbox.c.event_id == event_id)).first() is not None


def test_a_day_in_the_shop_runs_on_the_image(shop: Shop) -> None:
    settings = shop.settings
    admin = issue_token(settings, "ops", roles=[CUSTOMER_ROLE, ADMIN_ROLE])
    sku = f"IMG-{uuid.uuid4().hex[:10].upper()}"
    status, body = shop.api("POST", "/products", token=admin, body={
        "sku": sku, "name": "Image mug", "price": "2.50", "initial_stock": 10})
    assert status == 201, body

    username, password = f"img-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    status, body = shop.api("POST", "/auth/register",
                            body={"username": username, "password": password})
    assert status == 201, body  # argon2 hashing, in the image
    status, body = shop.api("POST", "/auth/token",
                            body={"username": username, "password": password})
    assert status == 200, body
    token = body["access_token"]
    assert shop.api("POST", "/accounts", token=token)[0] == 201
    assert shop.api("POST", "/accounts/deposit", token=token, body={"amount": "20.00"})[0] == 200

    # An order, carried to its end through the broker and the functions.
    paid = _order(shop, token, sku, "auto")
    carried = shop.carry(paid)
    assert _status(shop, token, paid) == "COMPLETED"
    assert c.ORDER_COMPLETED in [e["type"] for e in carried]
    for delivery in shop.deliveries:  # each step kept the event in its inbox
        assert _inbox(shop, delivery.function, delivery.event_id), delivery

    # A confirm-mode order whose payment window passes: timeouts cancels it.
    late = _order(shop, token, sku, "confirm")
    shop.carry(late)
    assert _status(shop, token, late) == "AWAITING_PAYMENT"
    with engine_of(settings).begin() as conn:
        conn.execute(t.orders.update().where(t.orders.c.id == uuid.UUID(late))
                     .values(payment_deadline=t.orders.c.created_at))
    assert shop.ping("timeouts").status == 200
    assert c.ORDER_CANCELLED in [e["type"] for e in shop.carry(late)]
    assert _status(shop, token, late) == "CANCELLED"

    # An event inventory refuses (its data breaks the schema) becomes a dead letter.
    bad = CloudEvent({"type": c.ORDER_CREATED, "source": "/saga/api",
                      "partitionkey": str(uuid.uuid4()), "datacontenttype": "application/json"},
                     {"order_id": "not-a-uuid"})
    refused = shop.deliver_event("inventory", bad)
    assert 400 <= refused.status < 500, refused
    for source in shop.manifests.kafka_sources.values():
        if source.sink == "inventory":
            topic = shop.manifests.dead_letter_topic(source)
            assert topic is not None
            letter = CloudEvent(dict(bad.get_attributes()) | error_extensions(
                "http://inventory.order-saga.svc.cluster.local",
                Response(refused.status, refused.body)), bad.get_data())
            for function in shop.routes(topic):
                assert shop.deliver_event(function, letter).status == 200
            break
    with engine_of(settings).connect() as conn:
        stored = conn.execute(select(t.dead_letters.c.error_code, t.dead_letters.c.error_dest)
                              .where(t.dead_letters.c.event_id == bad["id"])).one()
    assert (stored.error_code, stored.error_dest) == (
        refused.status, "http://inventory.order-saga.svc.cluster.local")

    # A row a step left unpublished: outbox-relay publishes it on its tick.
    stranded = Outbox("image-test", new_trace(), caused_by=str(uuid.uuid4()))
    order_id = uuid.uuid4()
    event = stranded.emit(c.ORDER_COMPLETED, OrderCompleted(order_id=order_id, customer_id="x"),
                          partition_key=str(order_id))
    with transaction_on(settings) as tx:
        stranded.write(tx)
        tx.run("UPDATE messaging.outbox SET created_at = now() - interval '1 minute'"
               " WHERE id = %(id)s", {"id": uuid.UUID(event["id"])})
    assert shop.ping("outbox-relay").status == 200
    read_topic(settings, c.ORDER_COMPLETED, lambda got: bool(got["id"] == event["id"]))

    def published() -> bool:
        with engine_of(settings).connect() as conn:
            return conn.execute(select(t.outbox.c.published_at).where(
                t.outbox.c.id == uuid.UUID(event["id"]))).scalar_one() is not None
    wait_for(published, timeout=20, message="outbox-relay to mark the row published")

    # The retention sweep answers its tick: nothing here is past its windows, so it keeps all.
    inbox_rows = _count(settings, "messaging.inbox")
    assert shop.ping("retention").status == 200
    assert _count(settings, "messaging.inbox") >= inbox_rows

    # Every Service a source delivers to answered; only the refusal was refused.
    sinks = {s.sink for s in shop.manifests.kafka_sources.values()} | {
        s.sink for s in shop.manifests.ping_sources.values()}
    answered = {d.function for d in shop.deliveries if 200 <= d.status < 300}
    assert answered == sinks
    assert [d for d in shop.deliveries if not 200 <= d.status < 300] == [refused]


def test_the_api_serves_its_openapi_document(shop: Shop) -> None:
    status, document = shop.api("GET", "/openapi.json")
    assert status == 200
    assert str(document["openapi"]).startswith("3.1")
    assert "/orders" in document["paths"]


def _count(settings: Settings, table: str) -> int:
    with engine_of(settings).connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608
