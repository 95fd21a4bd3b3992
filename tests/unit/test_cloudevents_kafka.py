"""CloudEvent <-> Kafka record <-> HTTP request, binary mode, without a broker."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from cloudevents.conversion import to_binary as to_http_binary

from common.cloudevents_kafka import kafka_to_http, new_event, to_kafka
from common.events.models import OrderLine, StockReserved
from common.tracing import new_trace, parse_traceparent
from tests.helpers import from_kafka


def _event() -> tuple[uuid.UUID, object]:
    order_id = uuid.uuid4()
    data = StockReserved(
        order_id=order_id, items=[OrderLine(sku="MUG-001", quantity=2, unit_price=Decimal("12.50"))]
    )
    trace = new_trace()
    return order_id, new_event(
        "shop.stock.reserved.v1", data, source_function="inventory",
        partition_key=str(order_id), trace=trace,
    )


def test_round_trip_keeps_attributes_data_and_trace() -> None:
    order_id, event = _event()
    record = to_kafka(event)  # type: ignore[arg-type]
    assert record.topic == "shop.stock.reserved.v1"
    assert record.key == str(order_id).encode()
    headers = dict(record.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert "ce_partitionkey" not in headers  # it travels as the record key

    back = from_kafka(record.headers, record.key, record.value)
    for name in ("id", "source", "type", "subject", "time", "traceparent"):
        assert back[name] == event[name]  # type: ignore[index]
    assert back["partitionkey"] == str(order_id)
    assert back.data["items"][0]["unit_price"] == "12.50"  # money stays a decimal string
    assert parse_traceparent(back["traceparent"]) is not None


def test_kafka_to_http_matches_the_sdk_http_binding() -> None:
    _, event = _event()
    record = to_kafka(event)  # type: ignore[arg-type]
    headers, body = kafka_to_http(record.headers, record.key, record.value)
    sdk_headers, sdk_body = to_http_binary(from_kafka(record.headers, record.key, record.value))
    assert {k.lower(): v for k, v in headers.items()} == {
        k.lower(): v for k, v in sdk_headers.items()
    }
    assert body == record.value
    assert b'"MUG-001"' in sdk_body


def test_new_event_refuses_a_model_of_another_type() -> None:
    order_id = uuid.uuid4()
    wrong = StockReserved(
        order_id=order_id, items=[OrderLine(sku="A", quantity=1, unit_price=Decimal("1"))]
    )
    with pytest.raises(TypeError):
        new_event("shop.order.created.v1", wrong, source_function="api",
                  partition_key=str(order_id), trace=new_trace())
