"""The KafkaSource and PingSource emulation against a real broker and a real
functions-framework process (tests/integration/fixtures/runtime_echo.py), no mocks.

The echo function records every event it receives in a file and answers 400/500 when the
event's data asks for it, so these tests see exactly what reached the function, in which
order and how often, and what landed on the dead-letter topic.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from common.cloudevents_kafka import to_kafka
from common.kafka import client_config, producer_config
from tests.helpers import wait_for
from tests.integration.runtime_support import echo_process, echo_spec
from tools import REPO_ROOT
from tools.infra.kafka_clients import consumer_config, ensure_topics
from tools.manifests.specs import (
    DeliverySpec,
    KafkaSourceSpec,
    Manifests,
    PingSourceSpec,
)
from tools.manifests.topics import TopicSpec
from tools.runtime.console import Console
from tools.runtime.eventing.dead_letters import DeadLetterProducer
from tools.runtime.eventing.delivery import HttpSender, Verdict
from tools.runtime.eventing.kafka_source import KafkaSourceDispatcher
from tools.runtime.eventing.ping_source import PING_EVENT_TYPE, PingSourceRunner
from tools.runtime.serving.function_process import FunctionProcess
from tools.runtime.serving.supervisor import Supervisor
from tools.settings import LocalSettings

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def record_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("echo") / "received.ndjson"


@pytest.fixture(scope="module")
def echo(record_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionProcess]:
    with echo_process(record_file, tmp_path_factory.mktemp("logs")) as function:
        yield function


@pytest.fixture(scope="module")
def dead_letters(settings: LocalSettings) -> Iterator[DeadLetterProducer]:
    producer = DeadLetterProducer(producer_config(settings))
    yield producer
    producer.close()


def received(record_file: Path, prefix: str) -> list[dict[str, Any]]:
    if not record_file.exists():
        return []
    lines = [json.loads(line) for line in record_file.read_text().splitlines() if line]
    return [r for r in lines if r["attributes"]["id"].startswith(prefix)]


def produce(settings: LocalSettings, topic: str, events: list[tuple[str, str, Any]]) -> None:
    """(id, partition key, data) per event, in this order."""
    producer = Producer(producer_config(settings))
    for event_id, key, data in events:
        record = to_kafka(CloudEvent({"id": event_id, "source": "/saga/test",
                                      "type": "shop.test.v1", "partitionkey": key,
                                      "datacontenttype": "application/json"}, data), topic)
        producer.produce(record.topic, record.value, record.key, headers=record.headers)
    assert producer.flush(10) == 0
    producer.close()


def read_all(settings: LocalSettings, topic: str, count: int, timeout: float = 15) -> list[Message]:
    consumer = Consumer(client_config(settings) | {"group.id": f"reader-{uuid.uuid4()}",
                                                   "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                messages.append(message)
        return messages
    finally:
        consumer.close()


def committed(settings: LocalSettings, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer(consumer_config(settings, group, "earliest"))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        offsets = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        # A partition that never got a commit reports OFFSET_INVALID (negative).
        return {tp.partition: tp.offset for tp in offsets if tp.offset >= 0}
    finally:
        consumer.close()


def new_topics(settings: LocalSettings) -> tuple[str, str]:
    topic = f"rt-{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, [TopicSpec(topic, 3), TopicSpec(topic + ".dlq", 3)])
    return topic, topic + ".dlq"


def dispatcher_for(settings: LocalSettings, echo: FunctionProcess, topic: str, dlq: str | None,
                   delivery: DeliverySpec, dead_letters: DeadLetterProducer,
                   group: str | None = None, ordering: str = "ordered") -> KafkaSourceDispatcher:
    spec = KafkaSourceSpec(name="rt", consumer_group=group or f"g-{topic}", topics=(topic,),
                           sink=echo.name, initial_offset="earliest",
                           ordering="unordered" if ordering == "unordered" else "ordered",
                           delivery=delivery)
    return KafkaSourceDispatcher(
        spec, settings=settings, target=echo, request_timeout=10, sender=HttpSender(),
        console=Console(), dead_letters=dead_letters,
        dead_letter_topic=dlq, revoke_grace=5)


def test_delivery_order_retries_and_dead_letters(
        settings: LocalSettings, echo: FunctionProcess, record_file: Path,
        dead_letters: DeadLetterProducer) -> None:
    topic, dlq = new_topics(settings)
    prefix = f"{topic}-"
    events: list[tuple[str, str, Any]] = []
    for n in range(30):
        key = f"order-{n % 3}"
        data: dict[str, Any] = {"n": n}
        if n == 4:
            data = {"n": n, "status": 400}
        if n == 7:
            data = {"n": n, "status": 500}
        events.append((f"{prefix}{n}", key, data))
    produce(settings, topic, events)
    delivery = DeliverySpec(retry=3, backoff_policy="linear", backoff_delay=0.1,
                            dead_letter_sink="dls")
    dispatcher = dispatcher_for(settings, echo, topic, dlq, delivery, dead_letters)
    dispatcher.start()
    try:
        # 28 answered 200, one 400 (1 attempt), one 500 (1 + 3 retries).
        wait_for(lambda: len(received(record_file, prefix)) >= 28 + 1 + 4, timeout=30,
                 message="every attempt to reach the function")
        wait_for(lambda: dispatcher.stats().dead_lettered == 2, message="two dead letters")
        got = received(record_file, prefix)
        # Per partition key, in produced order (the 500 blocks its partition while retried).
        for key in ("order-0", "order-1", "order-2"):
            order = [r["data"]["n"] for r in got if r["attributes"]["partitionkey"] == key]
            expected = [n for n in range(30) if f"order-{n % 3}" == key]
            deduped = [n for i, n in enumerate(order) if i == 0 or order[i - 1] != n]
            assert deduped == expected, key
        attempts_400 = [r for r in got if r["data"]["n"] == 4]
        attempts_500 = [r for r in got if r["data"]["n"] == 7]
        assert len(attempts_400) == 1
        assert len(attempts_500) == 4  # the first attempt and exactly `retry` retries
        gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(attempts_500)]
        assert all(gap >= delay * 0.9 for gap, delay in zip(gaps, [0.1, 0.2, 0.3], strict=True))

        stats = dispatcher.stats()
        assert (stats.delivered, stats.retries, stats.dead_lettered) == (28, 3, 2)
        dead = {m.value(): dict(m.headers() or []) for m in read_all(settings, dlq, 2)}
        assert len(dead) == 2
        refused = dead[b'{"n":4,"status":400}']
        assert refused["ce_id"] == f"{prefix}4".encode() and refused["ce_type"] == b"shop.test.v1"
        assert refused["ce_knativeerrorcode"] == b"400"
        assert refused["ce_knativeerrordest"] == echo.url.encode()
        assert base64.b64decode(refused["ce_knativeerrordata"] or b"") == b"refused with 400"
        failed = dead[b'{"n":7,"status":500}']
        assert failed["ce_id"] == f"{prefix}7".encode()
        assert failed["ce_knativeerrorcode"] == b"500"
        # Offsets are committed once everything is handled: 10 records per key.
        wait_for(lambda: sum(committed(settings, f"g-{topic}", topic).values()) == 30,
                 message="offsets of all 30 records committed")
    finally:
        dispatcher.stop()


def _gated(n: int, open_from: int, gate: Path) -> dict[str, object]:
    """A record's data: from `open_from` on, the echo function holds it until `gate` exists."""
    return {"n": n, "gate": str(gate)} if n >= open_from else {"n": n}


def _delivered(record_file: Path, prefix: str) -> set[int]:
    return {r["data"]["n"] for r in received(record_file, prefix)}


def test_restart_mid_stream_loses_and_skips_nothing(
        settings: LocalSettings, echo: FunctionProcess, record_file: Path,
        dead_letters: DeadLetterProducer, tmp_path: Path) -> None:
    topic, dlq = new_topics(settings)
    prefix = f"{topic}-"
    count, gate = 150, tmp_path / "gate"
    # Records 30 and later are held by the function until the gate opens: the first
    # dispatcher stops with requests on the wire and most of the stream undelivered.
    produce(settings, topic, [(f"{prefix}{n}", f"k{n % 7}", _gated(n, 30, gate))
                              for n in range(count)])
    group = f"g-{topic}"
    delivery = DeliverySpec(retry=2, backoff_delay=0.05)
    first = dispatcher_for(settings, echo, topic, dlq, delivery, dead_letters, group=group)
    first.start()
    wait_for(lambda: _delivered(record_file, prefix) >= set(range(30)), timeout=30,
             message="part of the stream delivered")
    first.stop()
    gate.touch()
    handled_before = first.stats().delivered
    assert handled_before < count, "stopped too late to test a restart"
    # What was committed was handled: nothing past an unhandled record.
    seen = {r["data"]["n"] for r in received(record_file, prefix)}
    assert sum(committed(settings, group, topic).values()) <= len(seen)

    second = dispatcher_for(settings, echo, topic, dlq, delivery, dead_letters, group=group,
                            ordering="unordered")
    second.start()
    try:
        wait_for(lambda: _delivered(record_file, prefix) == set(range(count)), timeout=30,
                 message="every record delivered")
        wait_for(lambda: sum(committed(settings, group, topic).values()) == count,
                 message="all offsets committed")
        deliveries = len(received(record_file, prefix))
        # At least once: a record may be delivered twice around the restart, not more often.
        assert count <= deliveries <= count + 7 * 2
    finally:
        second.stop()


def test_a_record_that_is_no_cloudevent_is_wrapped(
        settings: LocalSettings, echo: FunctionProcess, record_file: Path,
        dead_letters: DeadLetterProducer) -> None:
    topic, dlq = new_topics(settings)
    producer = Producer(producer_config(settings))
    producer.produce(topic, b'{"plain": true}', b"the-key", headers=[("X-Origin", b"legacy")])
    assert producer.flush(10) == 0
    producer.close()
    dispatcher = dispatcher_for(settings, echo, topic, dlq, DeliverySpec(retry=0), dead_letters)
    dispatcher.start()
    try:
        got = wait_for(lambda: received(record_file, "partition:") and [
            r for r in received(record_file, "partition:")
            if r["attributes"]["source"].endswith(f"#{topic}")], message="the wrapped event")
        attributes = got[0]["attributes"]
        assert attributes["type"] == "dev.knative.kafka.event"
        assert attributes["key"] == "the-key" and attributes["xorigin"] == "legacy"
        assert got[0]["data"] == {"plain": True}
    finally:
        dispatcher.stop()


def test_idle_functions_scale_to_zero_and_start_again(
        settings: LocalSettings, tmp_path: Path) -> None:
    """Knative's lifecycle: a new revision starts with initial-scale pods (default 1), an
    idle min-scale 0 function scales to zero, its next event starts it again (a cold
    start, logged), initial-scale 0 waits for its first event, min-scale 1 never stops."""
    records = tmp_path / "received.ndjson"
    cold, warm = echo_spec("echo-cold", min_scale=0), echo_spec("echo-warm", min_scale=1)
    lazy = dataclasses.replace(echo_spec("echo-lazy", min_scale=0), initial_scale=0)
    topic, _dlq = new_topics(settings)
    source = KafkaSourceSpec(name="rt-idle", consumer_group=f"g-{topic}", topics=(topic,),
                             sink=cold.name, initial_offset="earliest",
                             delivery=DeliverySpec(retry=2, backoff_delay=0.05))
    lazy_source = dataclasses.replace(source, name="rt-lazy", sink=lazy.name,
                                      consumer_group=f"g-{topic}-lazy")
    manifests = Manifests(functions={f.name: f for f in (cold, warm, lazy)},
                          kafka_sources={s.name: s for s in (source, lazy_source)},
                          ping_sources={}, kafka_sinks={})
    supervisor = Supervisor(manifests, cwd=REPO_ROOT, env={"RUNTIME_ECHO_RECORD": str(records)},
                            log_dir=tmp_path / "logs", console=Console(),
                            idle_scale_to_zero_s=0.6, ingress_port=None)
    dispatcher = KafkaSourceDispatcher(source, settings=settings, target=supervisor[cold.name],
                                       request_timeout=10, sender=HttpSender(),
                                       console=Console())
    try:
        supervisor.start_initial()
        assert supervisor.wait_started(30)
        initial = supervisor[cold.name].status()
        assert initial.state == "running" and initial.last_cold_start_ms is None
        assert supervisor[lazy.name].status().state == "not_started"
        supervisor.start_scaler()
        wait_for(lambda: supervisor[cold.name].status().state == "scaled_to_zero",
                 timeout=10, message="the idle function scaled to zero")
        dispatcher.start()
        produce(settings, topic, [(f"{topic}-a", "k", {"n": 1})])
        first = wait_for(lambda: received(records, f"{topic}-a"), message="first event")
        assert first[0]["pid"] != initial.pid  # a new process: a cold start
        status = supervisor[cold.name].status()
        assert status.state == "running" and status.last_cold_start_ms is not None
        cold_starts = [json.loads(line) for line in
                       (tmp_path / "logs" / "echo-cold.ndjson").read_text().splitlines()
                       if '"saga.cold_start"' in line]
        assert len(cold_starts) == 1 and cold_starts[0]["event"]["duration"] > 0
        assert cold_starts[0]["service"]["name"] == "echo-cold"
        wait_for(lambda: supervisor[cold.name].status().state == "scaled_to_zero",
                 timeout=10, message="scaled to zero again")
        # min-scale 1 never stops, idle or not; initial-scale 0 never started.
        assert supervisor[warm.name].status().state == "running"
        assert supervisor[lazy.name].status().state == "not_started"
    finally:
        dispatcher.stop()
        supervisor.stop()
    assert supervisor[cold.name].status().state == "stopped"


def test_ping_source_delivers_ping_events(echo: FunctionProcess, record_file: Path) -> None:
    name = f"ping-{uuid.uuid4().hex[:6]}"
    # Six fields (seconds) keep the test short; manifests accept Knative's five only.
    spec = PingSourceSpec(name=name, sink=echo.name, schedule="* * * * * *",
                          data='{"job": "tick"}', content_type="application/json")
    runner = PingSourceRunner(spec, target=echo, request_timeout=10, sender=HttpSender(),
                              console=Console())
    source = f"/apis/v1/namespaces/default/pingsources/{name}"

    def pings() -> list[dict[str, Any]]:
        return [r for r in received(record_file, "") if r["attributes"]["source"] == source]

    tick = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert runner.fire(tick).verdict is Verdict.SUCCESS
    runner.start()
    try:
        wait_for(lambda: len(pings()) >= 2, timeout=10, message="a scheduled ping")
    finally:
        runner.stop()
    first, scheduled = pings()[0], pings()[1]
    assert first["attributes"]["type"] == PING_EVENT_TYPE
    assert first["attributes"]["time"].startswith("2026-01-01T12:00:00")
    assert first["data"] == {"job": "tick"}
    assert scheduled["attributes"]["id"] != first["attributes"]["id"]
    # A tick falls on a whole second of the wall clock.
    tick_time = datetime.fromisoformat(scheduled["attributes"]["time"])
    assert tick_time.microsecond == 0


def test_a_rebalance_between_two_members_loses_nothing(
        settings: LocalSettings, echo: FunctionProcess, record_file: Path,
        dead_letters: DeadLetterProducer, tmp_path: Path) -> None:
    topic, dlq = new_topics(settings)
    prefix = f"{topic}-"
    count, gate = 240, tmp_path / "gate"
    # Records 10 and later wait for the gate, opened once both members hold partitions:
    # the rebalance happens mid-stream, with requests on the wire.
    produce(settings, topic, [(f"{prefix}{n}", f"k{n % 9}", _gated(n, 10, gate))
                              for n in range(count)])
    group = f"g-{topic}"
    delivery = DeliverySpec(retry=2, backoff_delay=0.05)
    first = dispatcher_for(settings, echo, topic, dlq, delivery, dead_letters, group=group)
    second = dispatcher_for(settings, echo, topic, dlq, delivery, dead_letters, group=group)
    first.start()
    try:
        wait_for(lambda: _delivered(record_file, prefix) >= set(range(10)), timeout=30,
                 message="the first member delivering")
        second.start()  # the group rebalances: the first member's partitions are revoked
        wait_for(lambda: first.stats().partitions + second.stats().partitions == 3
                 and second.stats().partitions > 0, timeout=30,
                 message="the partitions shared by both members")
        gate.touch()
        wait_for(lambda: _delivered(record_file, prefix) == set(range(count)), timeout=30,
                 message="every record delivered")
        wait_for(lambda: sum(committed(settings, group, topic).values()) == count,
                 message="all offsets committed")
        assert second.stats().delivered > 0
    finally:
        first.stop()
        second.stop()


def test_records_written_at_once_by_many_producers_all_arrive(
        settings: LocalSettings, echo: FunctionProcess, record_file: Path,
        dead_letters: DeadLetterProducer) -> None:
    """Writers racing into one partition while the source tails it. Tansu can let such a
    fetch skip a record that became readable after a later one (tools/runtime/
    offset_gaps.py); every record must reach the function all the same."""
    topic = f"rt-{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, [TopicSpec(topic, 1)])
    prefix, writers, each = f"{topic}-", 6, 700
    dispatcher = dispatcher_for(settings, echo, topic, None, DeliverySpec(retry=2),
                                dead_letters, ordering="unordered")

    def write(writer: int) -> None:
        producer = Producer(producer_config(settings))
        for n in range(writer * each, (writer + 1) * each):
            record = to_kafka(CloudEvent({"id": f"{prefix}{n}", "source": "/saga/test",
                                          "type": "shop.test.v1", "partitionkey": f"k{n}",
                                          "datacontenttype": "application/json"}, {"n": n}),
                              topic)
            producer.produce(record.topic, record.value, record.key, headers=record.headers)
            producer.poll(0)
        assert producer.flush(30) == 0

    dispatcher.start()
    try:
        assert dispatcher.wait_assigned(30)
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        everything = set(range(writers * each))
        wait_for(lambda: _delivered(record_file, prefix) == everything, timeout=60,
                 message="every record written delivered")
    finally:
        dispatcher.stop()
