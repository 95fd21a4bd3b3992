"""Malformed CloudEvents to every event function: each is refused with a 4xx that Knative
does not retry (so the KafkaSource dead-letters it: not 404, 408, 409 or 429), and nothing
is written (no inbox row, no outbox row, no effect). The dead-letter path itself, through
the real KafkaSource emulation and the dlq function, is tested end to end in
tests/e2e/test_check_dead_letters.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from common import tables as t
from common.settings import Settings
from common.step import MAX_EVENT_BYTES
from tests.functions.saga_support import post_raw
from tests.helpers import engine_of

pytestmark = pytest.mark.integration

# function -> an event type it handles (so "valid type, bad data" reaches its model)
FUNCTIONS = {
    "inventory": "shop.order.created.v1",
    "payments": "shop.payment.requested.v1",
    "shipping": "shop.order.paid.v1",
    "order-saga": "shop.stock.reserved.v1",
    "notifications": "shop.order.completed.v1",
}
RETRIED = {404, 408, 409, 429}


def _headers(event_type: str, **changes: str | None) -> dict[str, str]:
    order_id = str(uuid.uuid4())
    headers: dict[str, str | None] = {
        "ce-specversion": "1.0", "ce-id": str(uuid.uuid4()), "ce-source": "/saga/attacker",
        "ce-type": event_type, "ce-subject": order_id, "ce-partitionkey": order_id,
        "Content-Type": "application/json"}
    headers.update(changes)
    return {k: v for k, v in headers.items() if v is not None}


def _valid_body() -> bytes:
    return json.dumps({"order_id": str(uuid.uuid4())}).encode()


# case -> (headers for an event type, body); each must be refused
CASES: dict[str, Callable[[str], tuple[dict[str, str], bytes]]] = {
    "missing-id": lambda ty: (_headers(ty, **{"ce-id": None}), _valid_body()),
    "missing-source": lambda ty: (_headers(ty, **{"ce-source": None}), _valid_body()),
    "missing-type": lambda ty: (_headers(ty, **{"ce-type": None}), _valid_body()),
    "missing-specversion": lambda ty: (_headers(ty, **{"ce-specversion": None}), _valid_body()),
    "wrong-specversion": lambda ty: (_headers(ty, **{"ce-specversion": "0.1"}), _valid_body()),
    "unknown-type": lambda ty: (_headers("shop.nothing.happened.v1"), _valid_body()),
    "invalid-json": lambda ty: (_headers(ty), b'{"order_id": "1", '),
    "json-not-an-object": lambda ty: (_headers(ty), b'"just a string"'),
    "data-violates-model": lambda ty: (_headers(ty), _valid_body()),  # required fields missing
    "wrong-field-types": lambda ty: (_headers(ty), json.dumps(
        {"order_id": "not-a-uuid", "customer_id": 7, "amount": "lots"}).encode()),
    "extra-fields": lambda ty: (_headers(ty), json.dumps(
        {"order_id": str(uuid.uuid4()), "admin": True}).encode()),
    "oversize-body": lambda ty: (_headers(ty), b'{"pad": "' + b"x" * (MAX_EVENT_BYTES + 1)
                                 + b'"}'),
}


def _written(settings: Settings, function: str) -> tuple[int, int]:
    with engine_of(settings).connect() as conn:
        inbox = conn.execute(select(func.count()).select_from(t.inbox)
                             .where(t.inbox.c.consumer == function)).scalar_one()
        outbox = conn.execute(select(func.count()).select_from(t.outbox)
                              .where(t.outbox.c.producer == function)).scalar_one()
    return int(inbox), int(outbox)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_event_is_refused_for_the_dead_letter_sink_and_writes_nothing(
    saga_env: Settings, function: str, case: str
) -> None:
    headers, body = CASES[case](FUNCTIONS[function])
    before = _written(saga_env, function)
    response = post_raw(function, headers, body)
    assert 400 <= response.status_code < 500, (case, response.status_code, response.get_data())
    assert response.status_code not in RETRIED, "Knative would retry this instead of DLQ"
    # (Missing id/source/type are refused by functions-framework itself, with its own
    # text/html 400 page rather than our problem+json: still a 4xx the sink dead-letters.)
    assert _written(saga_env, function) == before
