"""Helpers shared by tests: build and post CloudEvents, read topics, wait on conditions.

Waiting is always on a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pydantic import BaseModel
from werkzeug.test import TestResponse

from common.cloudevents_kafka import from_kafka, new_event
from common.kafka import client_config
from common.settings import Settings
from common.tracing import TraceContext, new_trace

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)  # poll interval of a deadline-bounded wait


def make_event(
    event_type: str, data: BaseModel, *, source: str = "test", order_id: uuid.UUID | str,
    trace: TraceContext | None = None,
) -> CloudEvent:
    return new_event(event_type, data, source_function=source, partition_key=str(order_id),
                     trace=trace or new_trace())


def post_event(client: Any, event: CloudEvent) -> TestResponse:
    headers, body = to_binary(event)
    response: TestResponse = client.post("/", headers=headers, data=body)
    return response


def read_topic(
    settings: Settings, topic: str, predicate: Callable[[CloudEvent], bool], *,
    timeout: float = 20.0,
) -> CloudEvent:
    """The first event on `topic` (read from the beginning of every partition, no consumer
    group) for which `predicate` holds."""
    consumer = Consumer(client_config(settings) | {
        "group.id": f"test-reader-{uuid.uuid4()}", "enable.auto.commit": False,
        "fetch.wait.max.ms": 10,
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            event = from_kafka(msg.headers(), msg.key(), msg.value() or b"")
            if predicate(event):
                return event
        raise AssertionError(f"no matching event on {topic} within {timeout}s")
    finally:
        consumer.close()


def money(value: str) -> Decimal:
    return Decimal(value)
