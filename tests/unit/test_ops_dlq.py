"""saga dlq's pure parts: the record a re-drive produces, decoding stored data, naming the
function a dead letter failed at."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from common.dead_letters import dedupe_key, redrive_of, waiting_sql
from common.settings import Settings
from tools.loadgen.invariants import INVARIANTS
from tools.manifests.specs import Manifests
from tools.ops.context import OpsContext, OpsError
from tools.ops.dlq import decode_data, function_of, record_of


def row(**fields: Any) -> Any:
    base = {"id": 7, "event_type": "shop.order.created.v1", "subject": "o-1",
            "redrive_count": 0, "data": b'{"order_id": "o-1"}', "created_at": datetime.now(UTC),
            "attributes": {"id": "e-1", "type": "shop.order.created.v1", "source": "/saga/api",
                           "specversion": "1.0", "partitionkey": "o-1",
                           "datacontenttype": "application/json", "traceparent": "00-a-b-01",
                           "knativeerrordest": "http://x", "knativeerrorcode": "422",
                           "knativeerrordata": "cmVmdXNlZA=="}}
    return SimpleNamespace(**(base | fields))


def test_a_redrive_is_the_same_event_without_error_extensions() -> None:
    topic, key, headers, value = record_of(row())
    assert (topic, key, value) == ("shop.order.created.v1", b"o-1", b'{"order_id": "o-1"}')
    names = dict(headers)
    assert names["ce_id"] == b"e-1" and names["ce_traceparent"] == b"00-a-b-01"
    assert names["content-type"] == b"application/json"
    assert not any(name.startswith("ce_knativeerror") for name in names)
    assert names["ce_sagaredrive"] == b"7.1"  # the first re-drive of dead letter 7
    assert record_of(row(redrive_count=2))[2].count(("ce_sagaredrive", b"7.3")) == 1


def test_a_letter_of_the_earlier_scheme_is_redriven_under_the_new_one() -> None:
    """Letters stored while `sagaredrive` was a bare count keep listing and re-driving: the
    count is replaced by this letter's own mark, and names no letter it came from."""
    old = row(id=9, redrive_count=1, attributes=row().attributes | {"sagaredrive": "1"})
    assert redrive_of(old.attributes) is None
    assert dict(record_of(old)[2])["ce_sagaredrive"] == b"9.2"
    # The dlq function's keys: an old-scheme key stays as it was, and no new one equals it.
    assert dedupe_key({"id": "e", "knativeerrordest": "d", "sagaredrive": "1"}) == "e|d|1"
    assert dedupe_key({"id": "e", "knativeerrordest": "d", "sagaredrive": "1.1"}) == "e|d|1.1"
    assert redrive_of({"sagaredrive": "12.3"}) == 12


def test_waiting_is_one_predicate_for_the_orm_and_for_sql() -> None:
    assert waiting_sql("d") == "d.redriven_at IS NULL AND NOT d.resolved"
    assert "d.redriven_at IS NULL AND NOT d.resolved" in " ".join(
        next(i.sql for i in INVARIANTS if i.name == "dead_letters").split())


def test_an_uncatalogued_type_needs_a_topic() -> None:
    odd = row(event_type="dev.knative.kafka.event")
    with pytest.raises(OpsError, match="give it with --topic"):
        record_of(odd)
    assert record_of(odd, "legacy.topic")[0] == "legacy.topic"


def test_stored_data_is_shown_decoded() -> None:
    assert decode_data(b'{"a": 1}', "application/json") == {"a": 1}
    assert decode_data(b"plain", "text/plain") == "plain"
    assert decode_data(b"\xff\x00", None) == {"base64": "/wA="}
    assert decode_data(None, None) is None


def test_the_failed_function_is_named(tmp_path: Path) -> None:
    empty = Manifests({}, {}, {}, {})
    runtime = {"functions": {"inventory": {"port": 41000}}}
    ctx = OpsContext(Settings(), tmp_path, runtime, empty)
    assert function_of(ctx, "http://127.0.0.1:41000") == "inventory"
    assert function_of(ctx, "http://payments.shop.svc.cluster.local") == "payments"
    assert function_of(ctx, None) is None
    assert json.dumps(function_of(ctx, "http://127.0.0.1:1")) == '"127.0.0.1"'
