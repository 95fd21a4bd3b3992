"""Kafka record -> HTTP request for the sink, and a failed event -> the dead-letter topic,
the way the eventing-kafka-broker data plane does both.

A binary-mode record is passed through (common.cloudevents_kafka.kafka_to_http); a
structured-mode one (content-type application/cloudevents+json) is POSTed as it is. A
record that is no CloudEvent at all is wrapped like Knative's InvalidCloudEventInterceptor
does: type dev.knative.kafka.event, id partition:<p>/offset:<o>, the key as the
`partitionkey` and `key` extensions and each Kafka header as an extension. That is what a
cluster would deliver, so a function sees the same event here and there (ours answer it
with a 4xx, which sends it to the dead-letter topic with Knative's error extensions).

Dead letters are the SAME event (id, attributes, data, key) with knativeerrordest,
knativeerrorcode and knativeerrordata (the response body, at most 1024 bytes, base64, as
Knative does), plus any `kne-*` response header as an extension. With no HTTP response
(connection refused, timeout) Knative adds only knativeerrordest; so does this.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from common.cloudevents_kafka import kafka_to_http
from tools.runtime.eventing.delivery import Response

ERROR_DATA_MAX_BYTES = 1024
KAFKA_EVENT_TYPE = "dev.knative.kafka.event"
STRUCTURED = "application/cloudevents"
_ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")

Headers = Sequence[tuple[str, bytes | str | None]]
# What Producer.produce takes (a list is invariant, so this is spelled out).
HeaderList = list[tuple[str, str | bytes | None]]


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


def error_extensions(destination: str, response: Response) -> dict[str, str]:
    extensions = {"knativeerrordest": destination}
    if response.status is None:
        return extensions
    extensions["knativeerrorcode"] = str(response.status)
    for name, value in response.headers.items():
        if name.lower().startswith("kne-"):
            extensions[name[4:].lower()] = value
    if response.body:
        extensions["knativeerrordata"] = base64.b64encode(
            response.body[:ERROR_DATA_MAX_BYTES]).decode()
    return extensions


def dead_letter_record(message: Message, event: HttpEvent,
                       extensions: Mapping[str, str]) -> tuple[HeaderList, bytes]:
    """Headers and value of the dead-letter record (its key is the original record's)."""
    if event.structured:
        document: dict[str, Any] = json.loads(event.body)
        for name in _ERROR_EXTENSIONS:
            document.pop(name, None)
        document.update(extensions)
        headers: HeaderList = [(n, v) for n, v in headers_of(message) if v is not None]
        return headers, json.dumps(document, separators=(",", ":")).encode()
    kept: HeaderList = []
    if not event.wrapped:  # other Kafka headers travel with the event
        kept = [(name, raw) for name, raw in headers_of(message)
                if raw is not None and not name.lower().startswith("ce_")
                and name.lower() != "content-type"]
    for name, value in event.headers.items():
        lowered = name.lower()
        if lowered.startswith("ce-") and lowered[3:] not in _ERROR_EXTENSIONS:
            kept.append(("ce_" + lowered[3:], value.encode()))
        elif lowered == "content-type":
            kept.append(("content-type", value.encode()))
    kept.extend((f"ce_{name}", value.encode()) for name, value in extensions.items())
    return kept, event.body


class DeadLetterProducer:
    """Writes dead letters and waits for the broker's ack, so an offset is committed only
    once its event is safely in the dead-letter topic. Thread-safe (confluent-kafka
    producers are; each send waits on its own event)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._producer = Producer(dict(config))

    def send(self, topic: str, key: bytes | None, headers: HeaderList,
             value: bytes, *, interrupted: threading.Event) -> bool:
        """True once written. Unlike Knative, which commits even when the dead-letter sink
        failed (and so loses the event), this retries until it succeeds or `interrupted`
        is set (False: not written, the offset must not be committed)."""
        delay = 0.2
        while not interrupted.is_set():
            done = threading.Event()
            errors: list[KafkaError] = []

            def report(error: KafkaError | None, _msg: Message, errors: list[KafkaError] = errors,
                       done: threading.Event = done) -> None:
                if error is not None:
                    errors.append(error)
                done.set()

            self._producer.produce(topic, value=value, key=key, headers=headers,
                                   on_delivery=report)
            deadline = time.monotonic() + 35  # beyond message.timeout.ms: the ack arrives
            while not done.is_set() and time.monotonic() < deadline:
                self._producer.poll(0.05)
            if done.is_set() and not errors:
                return True
            if interrupted.wait(delay):
                break
            delay = min(delay * 2, 5.0)
        return False

    def close(self) -> None:
        self._producer.flush(10)
        self._producer.close()


def _content_type(headers: Headers) -> str:
    for name, value in headers:
        if name.lower() == "content-type" and value is not None:
            return _text(value)
    return STRUCTURED + "+json"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


