"""saga send's pure parts: the event it makes (as our producers make it), every bad input
named, and where `--to FUNCTION` goes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from common.cloudevents_kafka import new_event
from common.events import catalogue as c
from common.events.models import OrderCreated
from common.settings import Settings
from common.tracing import new_trace, parse_traceparent
from tools.cli.main import main as saga
from tools.manifests.specs import Manifests
from tools.ops.context import OpsContext, OpsError
from tools.ops.send import build, control_for, read_data
from tools.runtime.control import ControlClient

ORDER = str(uuid.uuid4())
CREATED: dict[str, Any] = {
    "order_id": ORDER, "customer_id": "alice", "total": "9.00", "payment_mode": "auto",
    "items": [{"sku": "MUG-001", "quantity": 1, "unit_price": "9.00"}],
    "created_at": "2026-12-01T10:00:00+00:00"}


def test_the_event_carries_what_our_producers_set() -> None:
    event = build(c.ORDER_CREATED, CREATED)
    ours = new_event(c.ORDER_CREATED, OrderCreated.model_validate(CREATED),
                     source_function="api", partition_key=ORDER, trace=new_trace())
    assert set(event.get_attributes()) == set(ours.get_attributes())
    assert (event["type"], event["subject"], event["partitionkey"]) == (
        c.ORDER_CREATED, ORDER, ORDER)
    assert event["source"] == "/saga/saga-send"
    assert parse_traceparent(event["traceparent"]) is not None
    assert uuid.UUID(event["id"])
    assert event.get_data() == OrderCreated.model_validate(CREATED).model_dump(mode="json")
    assert build(c.ORDER_CREATED, CREATED, event_id="again-1")["id"] == "again-1"


def test_data_that_violates_the_model_names_each_field_and_why() -> None:
    bad = CREATED | {"items": [{"sku": "MUG-001", "quantity": 0, "unit_price": "9.00"}]}
    del bad["customer_id"]
    with pytest.raises(OpsError) as refused:
        build(c.ORDER_CREATED, bad)
    message = str(refused.value)
    assert "not a valid shop.order.created.v1 (OrderCreated)" in message
    assert "customer_id: Field required" in message
    assert "items.0.quantity: Input should be greater than 0" in message
    with pytest.raises(OpsError, match="data: Input should be a valid dictionary"):
        build(c.ORDER_CREATED, [1, 2])


def test_an_unknown_type_lists_the_catalogue() -> None:
    with pytest.raises(OpsError) as refused:
        build("shop.order.shipped.v1", {})
    assert all(event_type in str(refused.value) for event_type in c.CATALOGUE)


def test_data_inline_or_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(CREATED))
    assert read_data(f"@{path}") == CREATED == read_data(json.dumps(CREATED))
    with pytest.raises(OpsError, match="cannot read the file"):
        read_data(f"@{tmp_path / 'missing.json'}")
    with pytest.raises(OpsError, match="--data is not JSON"):
        read_data('{"order_id": ')


def test_bad_input_exits_2_naming_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert saga(["send", c.ORDER_CREATED, "--data", '{"order_id": 1}']) == 2
    assert "order_id: UUID input should be" in capsys.readouterr().err
    assert saga(["send", "nope", "--data", "{}"]) == 2
    assert "the types are: shop." in capsys.readouterr().err


def test_to_a_function_of_the_local_runtime(tmp_path: Path) -> None:
    """--to goes through the runtime's control port (which starts a function that scaled
    to zero), for a function that takes the type, of a runtime that runs."""
    def ctx(runtime: dict[str, Any] | None) -> OpsContext:
        return OpsContext(Settings(), tmp_path, runtime, Manifests({}, {}, {}, {}))

    running = {"phase": "running", "control": {"url": "http://127.0.0.1:41001", "token": "t"}}
    assert isinstance(control_for(ctx(running), "payments", c.PAYMENT_REQUESTED), ControlClient)
    with pytest.raises(OpsError, match=r"inventory does not take .* \(taken by: payments\)"):
        control_for(ctx(running), "inventory", c.PAYMENT_REQUESTED)
    with pytest.raises(OpsError, match="--to needs the local runtime"):
        control_for(ctx(None), "payments", c.PAYMENT_REQUESTED)
    with pytest.raises(OpsError, match=r"still starting \(phase starting\)"):
        control_for(ctx({"phase": "starting"}), "payments", c.PAYMENT_REQUESTED)
