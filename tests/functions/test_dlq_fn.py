"""The dlq function: stores each dead letter once, with Knative's error extensions, whatever
its type or data, and never refuses a CloudEvent it could parse."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent
from sqlalchemy import select

from common import tables as t
from common.dead_letters import mark_redriven
from common.events import catalogue as c
from common.pg import tx_in
from common.settings import Settings
from tests.functions.saga_support import (
    binary_headers,
    check_service,
    deliver,
    inbox_has,
    manifest,
    post_raw,
    rows,
)
from tests.helpers import engine_of, event_function_client, from_kafka, post_event
from tools.ops.dlq import record_of

pytestmark = pytest.mark.integration

DEST = "http://inventory.saga.svc.cluster.local"
PROBLEM = '{"type":"about:blank","title":"event data violates its schema","status":422}'


def _dead_letter(data: object = None, **extensions: str) -> CloudEvent:
    order_id = str(uuid.uuid4())
    attributes = {
        "id": str(uuid.uuid4()), "source": "/saga/api", "type": "shop.order.created.v1",
        "subject": order_id, "partitionkey": order_id, "datacontenttype": "application/json",
        "knativeerrordest": DEST, "knativeerrorcode": "422",
        "knativeerrordata": base64.b64encode(PROBLEM.encode()).decode(),
    } | extensions
    return CloudEvent(attributes, data if data is not None else {"order_id": order_id})


def _stored(settings: Settings, ev: CloudEvent) -> list[Any]:
    return rows(settings, t.dead_letters, event_id=ev["id"])


def test_dead_letter_is_stored_once_with_its_extensions(saga_env: Settings) -> None:
    ev = _dead_letter()
    headers, body = binary_headers(ev), json.dumps(ev.get_data()).encode()
    assert post_raw("dlq", headers, body).status_code == 200
    assert post_raw("dlq", headers, body).status_code == 200  # the KafkaSource redelivers

    [row] = _stored(saga_env, ev)
    assert (row.event_type, row.source, row.subject) == (
        "shop.order.created.v1", "/saga/api", ev["subject"])
    assert row.error_dest == DEST
    assert row.error_code == 422
    assert row.error_data == PROBLEM
    assert bytes(row.data) == body
    assert row.attributes["knativeerrorcode"] == "422"
    assert row.attributes["partitionkey"] == ev["partitionkey"]
    assert (row.redrive_count, row.resolved) == (0, False)
    assert inbox_has(saga_env, "dlq", f"{ev['id']}|{DEST}")


def test_the_same_event_failing_at_two_consumers_is_stored_twice(saga_env: Settings) -> None:
    ev = _dead_letter()
    assert deliver("dlq", ev).status_code == 200
    other = CloudEvent(dict(ev.get_attributes()) | {"knativeerrordest": "http://payments.saga"},
                       ev.get_data())
    assert deliver("dlq", other).status_code == 200
    assert sorted(r.error_dest for r in _stored(saga_env, ev)) == [
        DEST, "http://payments.saga"]


def _failed_again(letter: Any) -> CloudEvent:
    """The event `saga dlq redrive` produces for `letter`, as its KafkaSource delivers it
    to the dlq once the step failed on it again (Knative's error extensions added)."""
    _topic, key, headers, value = record_of(letter)
    event = from_kafka(headers, key, value or b"")
    return CloudEvent(dict(event.get_attributes()) | {
        "knativeerrordest": DEST, "knativeerrorcode": "500",
        "knativeerrordata": base64.b64encode(b"step failed").decode()}, event.get_data())


def test_every_failure_of_every_redrive_is_stored_once(saga_env: Settings) -> None:
    """Re-driving the letter a re-drive produced, while the step still fails, is a new
    failure: it must be stored (it once reused the key of the letter before it and
    vanished), and a redelivery of it must not be stored twice."""
    first = _dead_letter(knativeerrorcode="500")
    assert deliver("dlq", first).status_code == 200
    [letter] = _stored(saga_env, first)
    for attempt in (1, 2):
        again = _failed_again(letter)
        assert deliver("dlq", again).status_code == 200
        assert deliver("dlq", again).status_code == 200  # the KafkaSource redelivers
        with engine_of(saga_env).begin() as conn:
            mark_redriven(tx_in(conn), [letter.id])
        stored = sorted(_stored(saga_env, first), key=lambda r: r.id)
        assert len(stored) == attempt + 1, f"re-drive {attempt} of {letter.id} not stored"
        letter = stored[-1]
    chain = sorted(_stored(saga_env, first), key=lambda r: r.id)
    # Each letter names the one whose re-drive failed into it: "LETTER.N".
    assert [r.attributes.get("sagaredrive") for r in chain] == [
        None, f"{chain[0].id}.1", f"{chain[1].id}.1"]
    assert [r.id for r in chain if r.redriven_at is None] == [chain[-1].id]


def test_garbage_of_any_type_is_stored_as_received(saga_env: Settings) -> None:
    ev = _dead_letter(type="not.a.catalogued.type", knativeerrorcode="teapot",
                      knativeerrordata="%%% not base64 %%%")
    headers = binary_headers(ev) | {"content-type": "application/octet-stream"}
    body = b"\x00\xffbinary garbage"
    assert post_raw("dlq", headers, body).status_code == 200
    [row] = _stored(saga_env, ev)
    assert row.event_type == "not.a.catalogued.type"
    assert bytes(row.data) == body
    assert row.error_code is None
    assert row.error_data == "%%% not base64 %%%"


def test_structured_mode_and_missing_extensions_are_stored(saga_env: Settings) -> None:
    ev = CloudEvent({"id": str(uuid.uuid4()), "source": "/elsewhere", "type": "x.y"},
                    {"k": 1})
    headers, body = to_structured(ev)
    assert post_raw("dlq", dict(headers), body).status_code == 200
    [row] = _stored(saga_env, ev)
    assert json.loads(bytes(row.data)) == {"k": 1}
    assert (row.error_dest, row.error_code, row.error_data) == (
        None, None, None)


def test_a_large_dead_letter_is_not_refused(saga_env: Settings) -> None:
    # The steps refuse bodies over 256 KiB with 413, and those refusals land here.
    ev = _dead_letter(knativeerrorcode="413")
    body = b'{"pad": "' + b"x" * 400_000 + b'"}'
    assert post_raw("dlq", binary_headers(ev), body).status_code == 200
    [row] = _stored(saga_env, ev)
    assert len(bytes(row.data)) == len(body)


def test_a_letter_that_is_no_cloudevent_is_stored_too_once(saga_env: Settings) -> None:
    """A dead letter may be one because it is malformed (no id, a wrong specversion): the
    dead-letter topic has no dead-letter sink, so refusing it would lose it."""
    ev = _dead_letter()
    headers = binary_headers(ev)
    headers.pop("ce-id")
    headers["ce-specversion"] = "0.1"
    assert post_raw("dlq", headers, b"{}").status_code == 200
    assert post_raw("dlq", headers, b"{}").status_code == 200  # redelivered: stored once
    with engine_of(saga_env).connect() as conn:
        rows = conn.execute(select(t.dead_letters).where(
            t.dead_letters.c.subject == ev["subject"],
            t.dead_letters.c.event_id.startswith("unparsed-"))).all()
    assert len(rows) == 1
    [row] = rows
    assert row.attributes["specversion"] == "0.1"
    assert "sagaunparsed" in row.attributes
    assert bytes(row.data) == b"{}"


def test_database_outage_answers_5xx_never_4xx(
    saga_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:9/none")
    # A process started on that DATABASE_URL (the cached client read the good one).
    assert post_event(event_function_client("dlq"), _dead_letter()).status_code == 503


def test_manifests_read_the_dead_letter_topic_without_a_dead_letter_sink() -> None:
    check_service(c.DLQ)
    spec = manifest("kafka-sources/dlq.yaml")["spec"]
    assert spec["topics"] == [c.DEAD_LETTER_TOPIC]
    assert spec["consumerGroup"] == "saga-dlq"
    assert (spec["initialOffset"], spec["ordering"]) == ("earliest", "ordered")
    assert "deadLetterSink" not in spec["delivery"]
    assert spec["delivery"]["retry"] > 0
    assert spec["sink"]["ref"]["name"] == c.DLQ
