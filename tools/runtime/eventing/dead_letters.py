"""A failed event -> the dead-letter topic, the way the eventing-kafka-broker data plane
does it: the SAME event (id, attributes, data, key) with knativeerrordest,
knativeerrorcode and knativeerrordata (the response body, at most 1024 bytes, base64),
plus any `kne-*` response header as an extension. With no HTTP response (connection
refused, timeout) Knative adds only knativeerrordest; so does this.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from tools.runtime.eventing.delivery import Response
from tools.runtime.eventing.http_event import HttpEvent, headers_of

ERROR_DATA_MAX_BYTES = 1024
_ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")

# What Producer.produce takes (a list is invariant, so this is spelled out).
HeaderList = list[tuple[str, str | bytes | None]]


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
