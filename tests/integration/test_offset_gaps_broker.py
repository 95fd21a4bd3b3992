"""The gap guard against a real broker (tools/runtime/eventing/offset_gaps.py): a consumer that
moved past records, as Tansu's fetch can make it, is sent back and hands out every record
once, in order. The skip is made by hand (a seek forward), so the test does not wait for
Tansu's race to happen; test_runtime_dispatch.py has writers race for it as well."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from common.kafka import producer_config
from tools.infra.kafka_clients import consumer_config, ensure_topics
from tools.manifests.topics import TopicSpec
from tools.runtime.eventing.offset_gaps import OffsetGapGuard
from tools.settings import LocalSettings

pytestmark = pytest.mark.integration

RECORDS, SKIP_AFTER, SKIP_TO = 20, 2, 6


def test_a_consumer_moved_past_records_is_sent_back_and_misses_none(
        settings: LocalSettings) -> None:
    topic = f"gap-{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, [TopicSpec(topic, 1)])
    producer = Producer(producer_config(settings))
    for n in range(RECORDS):
        producer.produce(topic, value=str(n).encode(), key=b"k")
    assert producer.flush(10) == 0

    key = (topic, 0)
    said: list[str] = []
    refetches: list[int] = []
    guard = OffsetGapGuard(say=said.append, on_refetch=lambda: refetches.append(1))
    guard.start(key, 0)
    consumer = Consumer(consumer_config(settings, f"g-{topic}", "earliest"))
    consumer.assign([TopicPartition(topic, 0, 0)])
    handed: list[int] = []
    skipped = False
    try:
        deadline = time.monotonic() + 30
        while len(handed) < RECORDS and time.monotonic() < deadline:
            message = consumer.poll(0.2)  # one at a time: the guard sees nothing past 2
            if message is None:
                continue
            for admitted in guard.admit(consumer, [message], {key}):
                assert admitted.error() is None
                handed.append(int(admitted.offset() or 0))
                if handed[-1] == SKIP_AFTER and not skipped:
                    skipped = True  # as if the fetch had skipped offsets 3 to 5
                    consumer.seek(TopicPartition(topic, 0, SKIP_TO))
    finally:
        consumer.close()
    assert handed == list(range(RECORDS))
    assert len(refetches) == 1 and said == []
