"""saga dlq's pure parts: the record a re-drive produces, decoding stored data, naming the
function a dead letter failed at."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from common.settings import Settings
from tools.ops.context import OpsContext, OpsError
from tools.ops.dlq import decode_data, function_of, record_of
from tools.runtime.specs import Manifests


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
    assert names["ce_sagaredrive"] == b"1"
    assert record_of(row(redrive_count=2))[2].count(("ce_sagaredrive", b"3")) == 1


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
