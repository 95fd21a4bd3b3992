"""CloudEvents <-> Kafka records <-> HTTP requests, binary content mode, in one place.

Kafka binary mode (CloudEvents Kafka protocol binding): attributes are `ce_<name>` headers,
`datacontenttype` is the `content-type` header, the `partitionkey` extension is the record
key and the data is the record value. HTTP binary mode uses `ce-<name>` headers. The
cloudevents SDK does the Kafka conversion; confluent-kafka's list-of-tuples headers are
adapted here and nowhere else.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent
from cloudevents.kafka import to_binary
from pydantic import BaseModel

from common.events.catalogue import spec_for
from common.tracing import TraceContext

KafkaHeaders = Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None]


@dataclass(frozen=True)
class KafkaRecord:
    """What is handed to confluent-kafka's Producer.produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, str | bytes | None]]


def new_event(
    event_type: str,
    data: BaseModel,
    *,
    source_function: str,
    partition_key: str,
    trace: TraceContext,
    event_id: str | None = None,
) -> CloudEvent:
    """A catalogued CloudEvent: id, source /saga/<function>, subject and partitionkey (the
    order id, so one order's events share a partition), time and traceparent."""
    spec = spec_for(event_type)
    if not isinstance(data, spec.model):
        raise TypeError(f"{event_type} carries {spec.model.__name__}, not {type(data).__name__}")
    attributes = {
        "id": event_id or str(uuid.uuid4()),
        "source": f"/saga/{source_function}",
        "type": event_type,
        "subject": partition_key,
        "partitionkey": partition_key,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "traceparent": trace.traceparent,
    }
    return CloudEvent(attributes, data.model_dump(mode="json"))


def to_kafka(event: CloudEvent, topic: str | None = None) -> KafkaRecord:
    message = to_binary(event, data_marshaller=_json_bytes)
    key = message.key.encode() if isinstance(message.key, str) else message.key
    value = message.value.encode() if isinstance(message.value, str) else message.value
    headers: list[tuple[str, str | bytes | None]] = list(message.headers.items())
    return KafkaRecord(topic or event["type"], key, value, headers)


def kafka_to_http(
    headers: KafkaHeaders | None, key: bytes | str | None, value: bytes | None
) -> tuple[dict[str, str], bytes]:
    """Map a binary-mode Kafka record to a binary-mode HTTP request without parsing the
    data: this is the KafkaSource dispatcher's hot path. The record key becomes the
    `partitionkey` extension, as cloudevents.kafka.from_binary would make it."""
    http_headers: dict[str, str] = {}
    for name, raw in header_pairs(headers):
        if raw is None:
            continue
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        lowered = name.lower()
        if lowered.startswith("ce_"):
            http_headers["ce-" + lowered[3:]] = text
        elif lowered == "content-type":
            http_headers["Content-Type"] = text
    if key is not None and "ce-partitionkey" not in http_headers:
        http_headers["ce-partitionkey"] = key.decode() if isinstance(key, bytes) else key
    return http_headers, value or b""


def attributes_of(event: CloudEvent) -> dict[str, str]:
    """Every attribute as a string (extensions included), for storing in outbox or DLQ."""
    return {k: str(v) for k, v in event.get_attributes().items() if v is not None}


def event_from_parts(attributes: Mapping[str, Any], data: Any) -> CloudEvent:
    return CloudEvent(dict(attributes), data)


def _json_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    return json.dumps(data, separators=(",", ":")).encode()


def header_pairs(headers: KafkaHeaders | None) -> Sequence[tuple[str, bytes | str | None]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return headers
