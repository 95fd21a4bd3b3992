"""What a KafkaSource does with records on Apache Kafka when things go wrong: a dispatcher
SIGKILLed with a record in flight is rebalanced out of its group after its session timeout
and the records it had not committed are delivered again, once in effect; a record that is
no CloudEvent reaches the real step function as Knative wraps it, is refused (4xx) and goes
to the dead-letter topic. Real broker, real function processes, no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from confluent_kafka import Consumer, Producer, TopicPartition

from common.cloudevents_kafka import to_kafka
from common.kafka import producer_config
from common.migrate import upgrade
from tests.conftest import TEST_JWT_SECRET
from tests.helpers import wait_for
from tests.integration.runtime_support import echo_process
from tools import REPO_ROOT
from tools.infra.kafka_clients import consumer_config, ensure_topics
from tools.manifests.loader import load_project_manifests
from tools.manifests.specs import DeliverySpec, KafkaSourceSpec
from tools.manifests.topics import TopicSpec
from tools.ops.kafka_admin import kafka_ops
from tools.runtime.console import Console
from tools.runtime.eventing.dead_letters import DeadLetterProducer
from tools.runtime.eventing.delivery import HttpSender
from tools.runtime.eventing.kafka_source import KafkaSourceDispatcher
from tools.runtime.serving.function_process import FunctionProcess
from tools.settings import LocalSettings

pytestmark = [pytest.mark.integration, pytest.mark.kafka_only]

FIXTURES = Path(__file__).parent / "fixtures"
SESSION_TIMEOUT_MS = 6000  # the killed member's partitions move after this


@pytest.fixture(scope="module")
def settings(settings: LocalSettings) -> LocalSettings:
    return settings.model_copy(update={"kafka_session_timeout_ms": SESSION_TIMEOUT_MS})


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[tuple[FunctionProcess, Path]]:
    record = tmp_path / "received.ndjson"
    with echo_process(record, tmp_path / "logs") as function:
        yield function, record


def _produce(settings: LocalSettings, topic: str, events: list[tuple[str, Any]]) -> None:
    producer = Producer(producer_config(settings))
    for event_id, data in events:
        out = to_kafka(CloudEvent({"id": event_id, "source": "/saga/test", "type": "shop.test.v1",
                                   "partitionkey": "one-order",
                                   "datacontenttype": "application/json"}, data), topic)
        producer.produce(out.topic, out.value, out.key, headers=out.headers)
    assert producer.flush(30) == 0


def _ids(record: Path) -> list[str]:
    lines = record.read_text().splitlines() if record.exists() else []
    return [json.loads(line)["attributes"]["id"] for line in lines if line]


def _committed(settings: LocalSettings, group: str, topic: str) -> int | None:
    consumer = Consumer(consumer_config(settings, group, "earliest"))
    try:
        [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return tp.offset if tp.offset >= 0 else None
    finally:
        consumer.close()


def test_a_sigkilled_dispatcher_is_rebalanced_out_and_its_uncommitted_records_come_again(
        settings: LocalSettings, echo: tuple[FunctionProcess, Path], tmp_path: Path) -> None:
    function, record = echo
    topic, group = f"kill-{uuid.uuid4().hex[:8]}", f"g-kill-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [TopicSpec(topic, 1)])
    gate = tmp_path / "gate"
    ids = [f"{topic}-{n}" for n in range(15)]
    # One partition, ordered: the 11th record is held in flight (its gate closed), so the
    # ten before it are delivered and committed and the rest wait behind it.
    _produce(settings, topic, [(i, {"gate": str(gate)} if n == 10 else {"n": n})
                               for n, i in enumerate(ids)])
    child = subprocess.Popen(
        [sys.executable, str(FIXTURES / "source_child.py"), settings.kafka_bootstrap_servers
         or "", topic, group, function.url], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
        env=os.environ | {"SAGA_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS)})
    second: KafkaSourceDispatcher | None = None
    try:
        wait_for(lambda: ids[10] in _ids(record), timeout=60,
                 message="the 11th record to be in flight in the child")
        wait_for(lambda: _committed(settings, group, topic) == 10, timeout=30,
                 message="the ten delivered records to be committed")
        with kafka_ops(settings) as kafka:
            assert kafka.group(group).members == 1
        child.kill()  # SIGKILL: no LeaveGroup, no commit of what was in flight
        child.wait(10)
        gate.touch()  # the function may answer now: to nobody, the child is gone

        second = KafkaSourceDispatcher(
            KafkaSourceSpec(name="second", consumer_group=group, topics=(topic,), sink="echo",
                            initial_offset="earliest", delivery=DeliverySpec(retry=0)),
            settings=settings, target=function, request_timeout=30, sender=HttpSender(),
            console=Console())
        second.start()
        # The dead member holds the partition until its session times out.
        assert second.wait_assigned(SESSION_TIMEOUT_MS / 1000 * 5)
        wait_for(lambda: set(_ids(record)) == set(ids), timeout=30,
                 message="every record delivered")
        wait_for(lambda: _committed(settings, group, topic) == len(ids), timeout=30,
                 message="the new member to commit everything")
        with kafka_ops(settings) as kafka:
            assert kafka.group(group).members == 1  # the killed member is gone
        deliveries = Counter(_ids(record))
        assert deliveries[ids[10]] == 2  # in flight, uncommitted: delivered again
        assert all(deliveries[i] == 1 for i in ids if i != ids[10])  # committed: not again
    finally:
        if child.poll() is None:
            child.kill()
        if second is not None:
            second.stop()


def test_a_record_that_is_no_cloudevent_is_dead_lettered_by_the_step_function(
        settings: LocalSettings, fresh_database: Callable[[str], str], tmp_path: Path) -> None:
    """Knative wraps a record without ce_ headers as a dev.knative.kafka.event; no step
    function knows that type, so it answers 4xx and the KafkaSource dead-letters it."""
    database = fresh_database("kafka_poison")
    upgrade(database)
    project = load_project_manifests(REPO_ROOT)
    inventory = project.functions["inventory"]
    topic = f"poison-{uuid.uuid4().hex[:8]}"
    dlq = f"{topic}.dlq"
    ensure_topics(settings, [TopicSpec(topic, 1), TopicSpec(dlq, 1)])
    function = FunctionProcess(
        inventory, cwd=REPO_ROOT, log_dir=tmp_path / "logs", console=Console(), idle_after=3600,
        env={"DATABASE_URL": database, "KAFKA_BOOTSTRAP_SERVERS": str(
            settings.kafka_bootstrap_servers), "SAGA_KAFKA_BROKER_KIND": "kafka",
             "SAGA_PROFILE": "local", "SAGA_JWT_SECRET": TEST_JWT_SECRET})
    dead_letters = DeadLetterProducer(producer_config(settings))
    source = project.kafka_sources["inventory"]
    dispatcher = KafkaSourceDispatcher(
        KafkaSourceSpec(name="poison", consumer_group=f"g-{topic}", topics=(topic,),
                        sink="inventory", initial_offset="earliest", delivery=source.delivery),
        settings=settings, target=function, request_timeout=30, sender=HttpSender(),
        console=Console(), dead_letters=dead_letters, dead_letter_topic=dlq)
    producer = Producer(producer_config(settings))
    producer.produce(topic, b"not a cloudevent", b"legacy-key")
    assert producer.flush(30) == 0
    function.start()
    dispatcher.start()
    try:
        letter = _first(settings, dlq)
        headers = {k: v for k, v in letter.headers() or []}
        assert letter.value() == b"not a cloudevent"
        assert headers["ce_type"] == b"dev.knative.kafka.event"
        code = int(headers["ce_knativeerrorcode"] or b"0")
        assert 400 <= code < 500 and code not in (404, 408, 409, 429)
        wait_for(lambda: _committed(settings, f"g-{topic}", topic) == 1, timeout=30,
                 message="the dead-lettered record's offset committed")
        assert dispatcher.stats().dead_lettered == 1
    finally:
        dispatcher.stop()
        dead_letters.close()
        function.stop()


def _first(settings: LocalSettings, topic: str, timeout: float = 60) -> Any:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "group.id": f"reader-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        return wait_for(lambda: _message(consumer), timeout=timeout, interval=0.01,
                        message=f"a record on {topic}")
    finally:
        consumer.close()


def _message(consumer: Consumer) -> Any:
    message = consumer.poll(0.5)
    return message if message is not None and message.error() is None else None
