"""A Kafka record as the HTTP request a KafkaSource POSTs to its sink, the way the
eventing-kafka-broker data plane makes it. A binary-mode record is passed through
(common.cloudevents_kafka.kafka_to_http); a structured-mode one (content-type
application/cloudevents+json) is POSTed as it is; a record that is no CloudEvent is wrapped
as Knative's InvalidCloudEventInterceptor does: type dev.knative.kafka.event, id
partition:<p>/offset:<o>, the key as the `partitionkey` and `key` extensions, each Kafka
header an extension. A function sees the same event here as on a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Message

from common.cloudevents_kafka import kafka_to_http

KAFKA_EVENT_TYPE = "dev.knative.kafka.event"
STRUCTURED = "application/cloudevents"

Headers = Sequence[tuple[str, bytes | str | None]]


def headers_of(message: Message) -> list[tuple[str, bytes | str | None]]:
    headers = message.headers()
    if headers is None:
        return []
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


@dataclass(frozen=True)
class HttpEvent:
    headers: dict[str, str]
    body: bytes
    structured: bool = False
    wrapped: bool = False  # built from a record that was no CloudEvent

    @property
    def event_type(self) -> str | None:
        return self.headers.get("ce-type")

    @property
    def subject(self) -> str | None:
        return self.headers.get("ce-partitionkey") or self.headers.get("ce-subject")


def http_event(message: Message, *, source_name: str, namespace: str = "default",
               overrides: Mapping[str, str] | None = None) -> HttpEvent:
    headers = headers_of(message)
    value = message.value() or b""
    names = {name.lower() for name, _ in headers}
    if "ce_specversion" in names:
        headers_out, body = kafka_to_http(headers, message.key(), value)
        event = HttpEvent(headers_out, body)
    elif any(name.lower() == "content-type" and v is not None and _text(v).startswith(STRUCTURED)
             for name, v in headers):
        event = HttpEvent({"Content-Type": _content_type(headers)}, value, structured=True)
    else:
        event = _wrap(message, headers, value, source_name, namespace)
    if overrides and not event.structured:
        event.headers.update({f"ce-{name}": v for name, v in overrides.items()})
    return event


def _wrap(message: Message, headers: Headers, value: bytes, source_name: str,
          namespace: str) -> HttpEvent:
    partition, offset = message.partition(), message.offset()
    _kind, stamp = message.timestamp()
    out = {
        "ce-specversion": "1.0",
        "ce-id": f"partition:{partition}/offset:{offset}",
        "ce-source": f"/apis/v1/namespaces/{namespace}/kafkasources/{source_name}"
                     f"#{message.topic()}",
        "ce-type": KAFKA_EVENT_TYPE,
        "ce-subject": f"partition:{partition}#{offset}",
        "ce-time": datetime.fromtimestamp(max(stamp, 0) / 1000, UTC).isoformat(),
    }
    key = message.key()
    if key is not None:
        out["ce-partitionkey"] = out["ce-key"] = _text(key)
    for name, raw in headers:
        clean = re.sub(r"[^a-z0-9]", "", name.lower())
        if clean and raw is not None:
            out[f"ce-{clean}"] = _text(raw)
    return HttpEvent(out, value, wrapped=True)


def _content_type(headers: Headers) -> str:
    for name, value in headers:
        if name.lower() == "content-type" and value is not None:
            return _text(value)
    return STRUCTURED + "+json"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
