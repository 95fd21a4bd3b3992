"""Where Apache Kafka behaves differently from Tansu (docs/architecture.md, "Two brokers"),
checked on a real Kafka: a group with members cannot be moved (replay pauses first); the
idempotent producer gets its producer id from the broker and every record is acknowledged;
topics exist only as kafka-sources/topics/ says (no creation on demand); offsets_for_times
answers `saga replay --to-time`; watermarks and lag are exact under a batching producer;
a record the broker refuses is reported by the outbox re-publish."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # ConfigResource: re-exported
    AdminClient,
    ConfigResource,
)
from sqlalchemy import create_engine, pool, text

from common.events import catalogue
from common.kafka import producer_config
from common.migrate import upgrade
from common.settings import to_sqlalchemy_url
from tests.helpers import wait_for
from tools import REPO_ROOT
from tools.infra.kafka_clients import consumer_config, ensure_topics
from tools.manifests.specs import KafkaSourceSpec, Manifests
from tools.manifests.topics import TopicSpec, load_topic_specs
from tools.ops import replay, status
from tools.ops.context import OpsContext, OpsError
from tools.ops.kafka_admin import KafkaOps, kafka_ops
from tools.runtime.recovery import republish_unfinished
from tools.settings import LocalSettings

pytestmark = [pytest.mark.integration, pytest.mark.kafka_only]



@pytest.fixture
def kafka(settings: LocalSettings) -> Iterator[KafkaOps]:
    with kafka_ops(settings) as ops:
        yield ops


def _topic(settings: LocalSettings, partitions: int = 1,
           config: dict[str, str] | None = None) -> str:
    name = f"sem-{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, [TopicSpec(name, partitions, config or {})])
    return name


def _source(topic: str) -> KafkaSourceSpec:
    return KafkaSourceSpec(name="sem", consumer_group=f"g-{topic}", topics=(topic,),
                           sink="echo", initial_offset="earliest")


def _context(settings: LocalSettings, source: KafkaSourceSpec, tmp_path: Path) -> OpsContext:
    return OpsContext(settings, tmp_path, None, Manifests({}, {source.name: source}, {}, {}))


def test_a_group_with_members_is_not_moved_and_replay_says_to_pause_first(
        settings: LocalSettings, kafka: KafkaOps, tmp_path: Path) -> None:
    topic = _topic(settings)
    source = _source(topic)
    producer = Producer(producer_config(settings))
    for n in range(5):
        producer.produce(topic, str(n).encode())
    assert producer.flush(30) == 0
    member = Consumer(consumer_config(settings, source.consumer_group, "earliest"))
    member.subscribe([topic])
    wait_for(lambda: member.poll(0.2) is not None and member.assignment(), timeout=30,
             message="the member to get the partition")
    member.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    try:
        # The broker itself refuses (Tansu would not: docs/architecture.md, "Two brokers").
        with pytest.raises(KafkaException, match=r"UNKNOWN_MEMBER_ID|Unknown member"):
            kafka.alter(source.consumer_group, {(topic, 0): 0})
        plan = replay.plan(kafka, source, replay.Target("earliest"))
        assert plan.group.active and plan.group.members == 1
        with pytest.raises(OpsError, match="kubectl scale kafkasource sem --replicas=0"):
            replay.execute(_context(settings, source, tmp_path), kafka, [plan], pause=False,
                           report=lambda _: None)
    finally:
        member.close()  # leaves the group: now it may be moved
    wait_for(lambda: not kafka.group(source.consumer_group).active, timeout=30,
             message="the group to be empty")
    plan = replay.plan(kafka, source, replay.Target("earliest"))
    replay.execute(_context(settings, source, tmp_path), kafka, [plan], pause=False,
                   report=lambda _: None)
    assert kafka.committed(source.consumer_group) == {(topic, 0): 0}


def test_the_idempotent_producer_is_acknowledged_by_the_broker(settings: LocalSettings) -> None:
    config = producer_config(settings)
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    assert "batch.num.messages" not in config  # Tansu's one-record batches stay Tansu's
    with pytest.raises(KafkaException, match="acks"):  # librdkafka enforces acks=all
        Producer(config | {"acks": "1"})
    topic = _topic(settings)
    eos: list[dict[str, Any]] = []
    reports: list[tuple[Any, int | None]] = []
    producer = Producer(config | {"statistics.interval.ms": 100,
                                  "stats_cb": lambda s: eos.append(json.loads(s)["eos"])})
    producer.produce(topic, b"acknowledged", on_delivery=lambda e, m: reports.append(
        (e, m.offset())))
    assert producer.flush(30) == 0
    assert reports == [(None, 0)]  # written at offset 0, acknowledged

    def assigned() -> dict[str, Any] | None:
        producer.poll(0.1)  # serves the statistics callback
        return eos[-1] if eos and eos[-1]["idemp_state"] == "Assigned" else None

    state = wait_for(assigned, timeout=10, message="the producer id in the statistics")
    assert state["producer_id"] >= 0 and state["producer_epoch"] >= 0


def test_topics_are_created_as_the_manifests_say_and_never_on_demand(
        settings: LocalSettings) -> None:
    # The session's topics were created by the runtime's own path (tests/conftest.py).
    admin = AdminClient({"bootstrap.servers": str(settings.kafka_bootstrap_servers)})
    manifests = load_topic_specs(REPO_ROOT)
    metadata = admin.list_topics(timeout=30)
    resources = [ConfigResource("topic", name) for name in catalogue.topics()]
    for resource, future in admin.describe_configs(resources).items():
        spec, config = manifests[resource.name], future.result(30)
        assert len(metadata.topics[resource.name].partitions) == spec.partitions
        for key, value in spec.config.items():
            assert config[key].value == value, (resource.name, key)
    broker = ConfigResource("broker", str(next(iter(metadata.brokers))))
    assert admin.describe_configs([broker])[broker].result(30)[
        "auto.create.topics.enable"].value == "false"
    errors: list[Any] = []
    producer = Producer(producer_config(settings) | {"message.timeout.ms": 3000})
    producer.produce(f"no-such-topic-{uuid.uuid4().hex[:8]}", b"x",
                     on_delivery=lambda error, _: errors.append(error))
    producer.flush(30)
    assert len(errors) == 1 and errors[0] is not None  # never written
    assert f"no-such-topic-{uuid.uuid4().hex[:8]}" not in admin.list_topics(timeout=30).topics


def test_offsets_for_times_answer_replay_to_time(settings: LocalSettings, kafka: KafkaOps) -> None:
    topic = _topic(settings)
    start = int(time.time() * 1000) - 60_000
    producer = Producer(producer_config(settings))
    for n in range(5):
        producer.produce(topic, str(n).encode(), timestamp=start + n * 1000)
    assert producer.flush(30) == 0
    source = _source(topic)
    marks = kafka.watermarks([(topic, 0)])
    assert marks == {(topic, 0): (0, 5)}
    at = {label: kafka.offsets_for_time([(topic, 0)], millis, marks)[(topic, 0)]
          for label, millis in (("before", start - 1), ("between", start + 1500),
                                ("exact", start + 3000), ("after", start + 10_000))}
    assert at == {"before": 0, "between": 2, "exact": 3, "after": 5}  # after: the end
    plan = replay.plan(kafka, source, replay.Target("time", millis=start + 1500))
    assert [(p.current, p.target, p.redelivered) for p in plan.partitions] == [(0, 2, -2)]


def test_watermarks_and_lag_are_exact_under_a_batching_producer(
        settings: LocalSettings, tmp_path: Path) -> None:
    topic = _topic(settings, partitions=3)
    batching = producer_config(settings) | {"linger.ms": 50, "batch.num.messages": 10_000}
    producer = Producer(batching)
    for n in range(3000):
        producer.produce(topic, b"%d" % n, key=b"%d" % (n % 97))
    assert producer.flush(60) == 0
    source = _source(topic)
    with kafka_ops(settings) as kafka:
        highs = {p: high for (_, p), (_, high) in kafka.watermarks(
            [(topic, p) for p in range(3)]).items()}
    assert sum(highs.values()) == 3000  # one offset per record, batches or not
    committer = Consumer(consumer_config(settings, source.consumer_group, "earliest"))
    committer.commit(offsets=[TopicPartition(topic, 0, 100), TopicPartition(topic, 2, highs[2])],
                     asynchronous=False)
    committer.close()
    document = status.collect(_context(settings, source, tmp_path)).document
    [reported] = document["sources"]
    lags = {p["partition"]: (p["offset"], p["end"], p["lag"]) for p in reported["partitions"]}
    assert lags == {0: (100, highs[0], highs[0] - 100), 1: (None, highs[1], highs[1]),
                    2: (highs[2], highs[2], 0)}


def test_the_outbox_republish_reports_a_record_the_broker_refused(
        settings: LocalSettings, fresh_database: Callable[[str], str]) -> None:
    """flush() said 0 left and the re-publish counted the row as produced; Kafka had
    refused it (larger than the topic's max.message.bytes), which only the delivery
    report says."""
    topic = _topic(settings, config={"max.message.bytes": "256"})
    url = fresh_database("kafka_refused")
    upgrade(url)
    order = uuid.uuid4()
    engine = create_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO orders.orders (id, customer_id, status, payment_mode, total) "
            "VALUES (:id, 'c', 'AWAITING_PAYMENT', 'auto', 10)"), {"id": order})
        event_id = str(uuid.uuid4())
        attributes = {"id": event_id, "source": "/saga/api", "type": "shop.order.created.v1",
                      "specversion": "1.0", "partitionkey": str(order),
                      "datacontenttype": "application/json"}
        connection.execute(text(
            "INSERT INTO messaging.outbox (id, topic, event_type, partition_key, attributes,"
            " data, producer) VALUES (:id, :topic, 'shop.order.created.v1', :key,"
            " CAST(:attributes AS jsonb), CAST(:data AS jsonb), 'api')"),
            {"id": event_id, "topic": topic, "key": str(order),
             "attributes": json.dumps(attributes), "data": json.dumps({"pad": "x" * 1000})})
    engine.dispose()
    with pytest.raises(RuntimeError, match="refused by the broker"):
        republish_unfinished(settings, url)
