"""The dead-letter path under attack, end to end: malformed records on a topic of a real
`saga up` are refused by the function (4xx), dead-lettered by the KafkaSource emulation,
stored by the dlq function with the error code, and counted by `saga check`, which fails
unless the run said it expected them."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Producer
from sqlalchemy import func, select, text

from common import tables as t
from common.dead_letters import waiting
from common.events import catalogue as c
from common.kafka import client_config
from common.step import MAX_EVENT_BYTES
from tests.e2e.conftest import LocalStack
from tests.helpers import wait_for
from tools.loadgen.check import Options, Scope, engine_for, run_check

pytestmark = pytest.mark.e2e


Headers = list[tuple[str, str | bytes | None]]


def _ce(event_id: str, **changes: bytes | None) -> Headers:
    headers: dict[str, bytes | None] = {
        "ce_specversion": b"1.0", "ce_id": event_id.encode(), "ce_source": b"/saga/attacker",
        "ce_type": c.ORDER_CREATED.encode(), "content-type": b"application/json"}
    headers.update(changes)
    return [(k, v) for k, v in headers.items() if v is not None]


def _dead_letter_of(stack: LocalStack, event_id: str) -> str | None:
    """"stored" once the dlq stored it, "dropped" once the dlq's source gave up on it."""
    assert stack.settings.database_url is not None
    engine = engine_for(stack.settings.database_url.get_secret_value())
    try:
        with engine.connect() as conn:
            if conn.execute(text("SELECT 1 FROM messaging.dead_letters WHERE event_id = :i"),
                            {"i": event_id}).first():
                return "stored"
    finally:
        engine.dispose()
    runtime_log = (stack.logs_dir / "knative.ndjson").read_text(errors="replace")
    dropped = [line for line in runtime_log.splitlines()
               if event_id in line and "knative.delivery.dropped" in line]
    return "dropped" if dropped else None


def test_a_dead_letter_with_a_wrong_specversion_is_stored(local_stack: LocalStack) -> None:
    event_id = f"attack-{uuid.uuid4().hex[:8]}-wrong-specversion"
    producer = Producer(client_config(local_stack.settings))
    producer.produce(c.ORDER_CREATED, key=b"x", value=json.dumps(
        {"order_id": str(uuid.uuid4())}).encode(), headers=_ce(event_id, ce_specversion=b"0.1"))
    assert producer.flush(30) == 0
    fate = wait_for(lambda: _dead_letter_of(local_stack, event_id), timeout=60, interval=0.5,
                    message="the record to be stored or dropped")
    assert fate == "stored"


def test_malformed_records_end_up_as_dead_letters_that_check_counts(
    local_stack: LocalStack,
) -> None:
    marker = uuid.uuid4().hex[:8]
    ids = {case: f"attack-{marker}-{case}" for case in (
        "data-violates-model", "invalid-json", "oversize")}
    records = {
        "data-violates-model": (_ce(ids["data-violates-model"]),
                                json.dumps({"order_id": str(uuid.uuid4())}).encode()),
        "invalid-json": (_ce(ids["invalid-json"]), b'{"order_id": '),
        "oversize": (_ce(ids["oversize"]),
                     b'{"pad": "' + b"x" * (MAX_EVENT_BYTES + 10) + b'"}'),
    }
    producer = Producer(client_config(local_stack.settings) | {"message.max.bytes": 2_000_000})
    for headers, value in records.values():
        producer.produce(c.ORDER_CREATED, key=marker.encode(), value=value, headers=headers)
    assert producer.flush(30) == 0

    assert local_stack.settings.database_url is not None
    engine = engine_for(local_stack.settings.database_url.get_secret_value())
    try:
        def stored() -> dict[str, int | None]:
            with engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT event_id, error_code FROM messaging.dead_letters "
                    "WHERE event_id LIKE :m"), {"m": f"attack-{marker}-%"}).all()
            return {r.event_id: r.error_code for r in rows}

        def all_stored() -> dict[str, int | None] | None:
            now = stored()
            return now if len(now) == len(ids) else None

        found = wait_for(all_stored, timeout=60, interval=0.5,
                         message="every malformed record to be dead-lettered")
        by_case = {case: found[event_id] for case, event_id in ids.items()}
        assert by_case["data-violates-model"] == 422
        assert by_case["oversize"] == 413
        assert by_case["invalid-json"] == 400
        with engine.connect() as conn:
            effects = int(conn.execute(text(
                "SELECT count(*) FROM messaging.inbox WHERE event_id LIKE :m "
                "AND consumer <> 'dlq'"), {"m": f"attack-{marker}-%"}).scalar_one())
        # Refused before the transaction: the inventory has no inbox row (the dlq's own
        # inbox row, which stores each dead letter once, is expected).
        assert effects == 0

        with engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(t.dead_letters).where(
                waiting())).scalar_one())
        expected = run_check(engine, Scope(), Options(expected_dead_letters=total))
        unexpected = run_check(engine, Scope(), Options(expected_dead_letters=total - 1))
    finally:
        engine.dispose()
    assert "dead_letters" not in {v.invariant for v in expected.violations}
    assert "dead_letters" in {v.invariant for v in unexpected.violations}
