"""saga trace: one order's timeline from the logs (the database part is end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.settings import Settings
from tools.manifests.specs import Manifests
from tools.ops.context import OpsContext, OpsError
from tools.ops.trace import render, trace, traces

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


def test_the_orders_traces_and_their_links_are_named(tmp_path: Path) -> None:
    """docs/observability.md, "One order, its traces": the order's own, then the pay
    request's, which links to it."""
    own, paid = "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"
    logs = tmp_path / "logs"
    logs.mkdir()
    request = {"service": {"name": "api"}, "labels": {"order_id": ORDER},
               "event": {"action": "http.request", "outcome": "success"}}
    (logs / "api.ndjson").write_text("\n".join([
        line(**request, trace={"id": own}, url={"path": "/orders"},
             http={"request": {"method": "POST"}, "response": {"status_code": 201}}),
        line(**request | {"@timestamp": "2026-01-01T10:00:09.000Z"}, trace={"id": paid},
             http={"request": {"method": "POST"}, "response": {"status_code": 202}},
             url={"path": f"/orders/{ORDER}/pay"},
             span={"id": "b7ad6b7169203331", "links": [
                 {"trace": {"id": own}, "span": {"id": "00f067aa0ba902b7"}}]}),
    ]) + "\n")
    (logs / "payments.ndjson").write_text(line(**{
        "@timestamp": "2026-01-01T10:00:10.000Z", "trace": {"id": paid},
        "event": {"action": "saga.step.completed", "outcome": "success"},
        "labels": {"order_id": ORDER}}) + "\n")
    ctx = OpsContext(NO_DATABASE, tmp_path, None, Manifests({}, {}, {}, {}))
    entries, _ = trace(ctx, ORDER)
    assert [(e.trace_id, e.links_to) for e in entries] == [(own, None), (paid, own),
                                                           (paid, None)]
    assert traces(entries) == [
        (own, "the order's own trace: POST /orders -> 201"),
        (paid, f"POST /orders/{ORDER}/pay -> 202, links to 4bf92f35")]
    text = render(ORDER, entries)
    assert "in 2 trace(s)" in text and "trace 0af76519  POST" in text


def test_a_bad_order_id_is_refused(tmp_path: Path) -> None:
    ctx = OpsContext(NO_DATABASE, tmp_path, None, Manifests({}, {}, {}, {}))
    with pytest.raises(OpsError, match="is not an order id"):
        trace(ctx, "order-42")
