"""saga trace: one order's timeline from the logs (the database part is end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.settings import Settings
from tools.ops.context import OpsContext, OpsError
from tools.ops.trace import render, trace
from tools.runtime.specs import Manifests

ORDER = "6a24a5f7-0618-45ef-b594-4c9321d9442c"
NO_DATABASE = Settings().model_copy(update={"database_url": None})


def line(**doc: object) -> str:
    return json.dumps({"@timestamp": "2026-01-01T10:00:00.000Z", "log.level": "info",
                       "message": "m", "service": {"name": "inventory"}} | doc)


def test_log_lines_of_the_order_merge_by_time(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "inventory.ndjson").write_text("\n".join([
        line(**{"@timestamp": "2026-01-01T10:00:02.000Z", "event": {
            "action": "saga.step.completed", "outcome": "success", "duration": 20_000_000},
            "labels": {"order_id": ORDER, "emitted": "shop.stock.reserved.v1"},
            "cloudevents": {"type": "shop.order.created.v1", "id": "e1"}}),
        line(event={"action": "saga.step.completed"}, labels={"order_id": "another"}),
        "not json " + ORDER,
    ]) + "\n")
    (logs / "knative.ndjson").write_text(line(**{
        "@timestamp": "2026-01-01T11:59:59.000+02:00", "service": {"name": "inventory"},
        "event": {"action": "knative.delivery.retry", "outcome": "failure"},
        "message": "retry 1/8 in 0.40 s (HTTP 503)", "labels": {"order_id": ORDER}}) + "\n")
    ctx = OpsContext(NO_DATABASE, tmp_path, None, Manifests({}, {}, {}, {}))
    entries, notes = trace(ctx, ORDER)
    assert [e.what for e in entries] == ["knative.delivery.retry", "saga.step.completed"]
    assert entries[1].duration_ms == 20.0 and entries[1].detail == \
        "emitted shop.stock.reserved.v1"
    assert any("no database" in note for note in notes)
    text = render(ORDER, entries)
    assert "order.created" in text and "retry 1/8" in text


def test_a_bad_order_id_is_refused(tmp_path: Path) -> None:
    ctx = OpsContext(NO_DATABASE, tmp_path, None, Manifests({}, {}, {}, {}))
    with pytest.raises(OpsError, match="is not an order id"):
        trace(ctx, "42")
