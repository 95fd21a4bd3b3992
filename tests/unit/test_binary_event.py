"""common/serving/binary_event.py reads the same event as cloudevents' from_http from the
same request (attributes, their order, data), and fails exactly as it does."""

from __future__ import annotations

from typing import Any

import pytest
from cloudevents.exceptions import GenericException
from cloudevents.http import from_http

from common.serving import binary_event

BINARY = {
    "host": "127.0.0.1:8080", "content-length": "41", "ce-specversion": "1.0",
    "ce-id": "7c1f", "ce-source": "/saga/api", "ce-type": "shop.order.created.v1",
    "ce-subject": "o-1", "ce-partitionkey": "o-1", "ce-time": "2026-01-05T10:00:00Z",
    "ce-traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "content-type": "application/json", "prefer": "reply",
}
BODY = b'{"order_id": "o-1", "items": [1, 2]}'
STRUCTURED = (b'{"specversion": "1.0", "id": "s1", "source": "/x", "type": "t", '
              b'"data": {"a": 1}}')


def _without(*names: str) -> dict[str, str]:
    return {k: v for k, v in BINARY.items() if k not in names}


CASES: list[Any] = [
    pytest.param(BINARY, BODY, id="a delivery"),
    pytest.param(_without("content-type"), BODY, id="no content type"),
    pytest.param(_without("ce-time", "ce-subject"), BODY, id="no time: both make one"),
    pytest.param(BINARY | {"ce-dataschema": "s", "ce-knativeerrorcode": "500"}, BODY,
                 id="more extensions"),
    pytest.param(BINARY, b"", id="no body"),
    pytest.param(BINARY, b'""', id="an empty JSON string"),
    pytest.param(BINARY, b"[1, 2]", id="a JSON list"),
    pytest.param(BINARY, b"not json", id="not JSON"),
    pytest.param(BINARY, b"\xff\xfe", id="not UTF-8"),
    pytest.param(BINARY | {"content-type": "text/plain"}, b"hello", id="text"),
    pytest.param(BINARY | {"ce-id": ""}, BODY, id="an empty id"),
    pytest.param(BINARY | {"ce-data": "x"}, BODY, id="a ce-data header"),
    pytest.param(BINARY | {"ce-specversion": "0.3"}, BODY, id="specversion 0.3"),
    pytest.param({"content-type": "application/cloudevents+json"}, STRUCTURED,
                 id="structured"),
    pytest.param(BINARY | {"content-type": "application/cloudevents+json"}, STRUCTURED,
                 id="structured with ce- headers"),
]

MALFORMED: list[Any] = [
    pytest.param(_without("ce-id"), BODY, id="no id"),
    pytest.param(_without("ce-source"), BODY, id="no source"),
    pytest.param(_without("ce-type"), BODY, id="no type"),
    pytest.param(_without("ce-specversion"), BODY, id="no specversion"),
    pytest.param(BINARY | {"ce-specversion": "2.0"}, BODY, id="specversion 2.0"),
    pytest.param({"content-type": "application/cloudevents+json"}, b"{", id="bad structured"),
    pytest.param({}, b"", id="nothing at all"),
]


@pytest.mark.parametrize(("headers", "body"), CASES)
def test_the_event_from_http_reads(headers: dict[str, str], body: bytes) -> None:
    ours, theirs = binary_event.parse(headers, body), from_http(dict(headers), body)
    structured = headers.get("content-type", "").startswith("application/cloudevents")
    if (b'"time"' not in body) if structured else ("ce-time" not in headers):
        # Both made one from the clock.
        ours["time"] = theirs["time"]
    assert list(ours.get_attributes().items()) == list(theirs.get_attributes().items())
    assert ours.get_data() == theirs.get_data()
    assert type(ours.get_data()) is type(theirs.get_data())


@pytest.mark.parametrize(("headers", "body"), MALFORMED)
def test_a_malformed_request_fails_as_from_http_does(headers: dict[str, str],
                                                     body: bytes) -> None:
    with pytest.raises(GenericException) as ours:
        binary_event.parse(headers, body)
    with pytest.raises(GenericException) as theirs:
        from_http(dict(headers), body)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))
