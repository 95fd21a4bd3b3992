"""The Kafka clients only the tools use: the KafkaSource emulation's consumers and topic
administration (a function in a pod only produces: common/kafka.py). Apache Kafka gets
conventional settings, Tansu (settings.kafka_broker_kind "tansu") the workarounds of
docs/architecture.md, "Two brokers": short session timeouts, fewer partitions, a short
fetch wait. librdkafka's own log lines go to the logger KAFKA_LOG, not stderr, for every
client made with tool_config (here and in tools/ops/kafka_admin.py); the CLI counts them
into one summary line (kafka_log_tally). The emulation's consumers keep librdkafka's
default."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from common.kafka import client_config, producer_config
from common.settings import Settings
from tools.manifests.topics import TopicSpec, specs_for
from tools.settings import LocalSettings

# Tansu's defaults (see topic_partitions below and docs/benchmarks.md). Idle, it took 36%
# of a core with 3 partitions and a 10 ms fetch wait, 12% with 1 and 30 ms; under load
# 25-30 ms of CPU per order with 3/10, 15-16 with 2/20 or 1/25. Latency barely moved (p99
# at 15 orders/s: 347 ms with 3/10, 306 with 1/25): the hop's wait grows, but the CPU it
# frees shortens every queue.
TANSU_PARTITIONS = 2
TANSU_FETCH_WAIT_MS = 20
# Apache Kafka answers a fetch as soon as a record arrives (fetch.min.bytes 1), so the wait
# only bounds how often an idle consumer asks: librdkafka's default. Measured with
# `python -m tools.bench.up --command "./taskw up -- --broker kafka" --idle 60`: the
# broker took 3.3% of a core over the first idle minute at 500 ms, 7.6-8.7% at 50 ms.
KAFKA_FETCH_WAIT_MS = 500
# How long a consumer that died without leaving (a SIGKILLed `saga up`) keeps its
# partitions: librdkafka's 45 s (sized for clouds' network blips) made a restarted runtime
# wait that long for them; on loopback 10 s (Kafka's default before 3.0) is plenty.
KAFKA_SESSION_TIMEOUT_MS = 10_000
KAFKA_PARTITIONS = 3  # a topic no KafkaTopic describes (the manifests' dev size)
KAFKA_LOG = logging.getLogger("saga.kafka")


def is_tansu(settings: Settings) -> bool:
    """Whether the broker is Tansu: the tools' settings say so (SAGA_KAFKA_BROKER_KIND)."""
    return isinstance(settings, LocalSettings) and settings.kafka_broker_kind == "tansu"


def consumer_config(settings: LocalSettings, group_id: str, initial_offset: str) -> dict[str, Any]:
    config = client_config(settings) | {
        "group.id": group_id,
        # Offsets are committed by hand, only after the event was handled or dead-lettered.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": initial_offset,
        "enable.partition.eof": False,
    }
    if is_tansu(settings):
        config |= {
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": TANSU_FETCH_WAIT_MS,
        }
    else:
        config |= {"fetch.wait.max.ms": KAFKA_FETCH_WAIT_MS,
                   "session.timeout.ms": KAFKA_SESSION_TIMEOUT_MS}
    if settings.kafka_fetch_wait_ms is not None:
        config["fetch.wait.max.ms"] = settings.kafka_fetch_wait_ms
    if settings.kafka_session_timeout_ms is not None:
        config["session.timeout.ms"] = settings.kafka_session_timeout_ms
        config["heartbeat.interval.ms"] = max(100, settings.kafka_session_timeout_ms // 10)
    return config


def tool_config(settings: Settings, logger: logging.Logger = KAFKA_LOG) -> dict[str, Any]:
    """A client's configuration for a tool: common's, with librdkafka's log lines routed
    to `logger` (served when the client polls or closes) instead of raw to stderr."""
    return client_config(settings) | {"logger": logger}


def tool_producer_config(settings: Settings) -> dict[str, Any]:
    """common's producer (idempotent, acks=all), its log lines routed as tool_config's."""
    return producer_config(settings) | {"logger": KAFKA_LOG}


def admin_client(settings: Settings, logger: logging.Logger = KAFKA_LOG) -> AdminClient:
    return AdminClient(tool_config(settings, logger))


class KafkaLogTally(logging.Handler):
    """Counts the warnings and errors librdkafka logged; remembers the last one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.last = record.getMessage().rsplit("]: ", 1)[-1]  # without facility and thread

    def summary(self) -> str | None:
        if not self.count:
            return None
        return f"the Kafka client logged {self.count} problem(s), the last: {self.last}"


@contextmanager
def kafka_log_tally() -> Iterator[KafkaLogTally]:
    """While open, KAFKA_LOG's lines are counted, not printed (a command's summary)."""
    tally, propagate = KafkaLogTally(), KAFKA_LOG.propagate
    KAFKA_LOG.addHandler(tally)
    KAFKA_LOG.propagate = False
    try:
        yield tally
    finally:
        KAFKA_LOG.removeHandler(tally)
        KAFKA_LOG.propagate = propagate


def topic_partitions(settings: LocalSettings) -> int:
    """Partitions of a topic the local runtime creates that no KafkaTopic describes. Tansu
    (0.6) answers every fetch by listing what the partition holds and sleeps the whole
    fetch wait even when it has records, so fewer partitions and a longer wait cost it less
    CPU per order (measured in docs/benchmarks.md); on Kafka, kafka-sources/topics/ decides."""
    if settings.topic_partitions is not None:
        return settings.topic_partitions
    return TANSU_PARTITIONS if is_tansu(settings) else KAFKA_PARTITIONS


def runtime_topics(settings: LocalSettings, names: Iterable[str],
                   manifests: Mapping[str, TopicSpec]) -> list[TopicSpec]:
    """How the local runtime creates `names`: as their KafkaTopics in kafka-sources/topics/
    say (`manifests`, from load_topic_specs), a topic no KafkaTopic describes with
    topic_partitions(). On Tansu every topic gets topic_partitions() and no configuration
    (it keeps records in memory: retention does not apply). SAGA_TOPIC_PARTITIONS wins."""
    default = topic_partitions(settings)
    specs = specs_for(names, manifests, default_partitions=default)
    if is_tansu(settings):
        return [TopicSpec(spec.name, default) for spec in specs]
    if settings.topic_partitions is not None:
        return [TopicSpec(spec.name, default, spec.config) for spec in specs]
    return specs


def ensure_topics(settings: LocalSettings, topics: Iterable[str | TopicSpec],
                  timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet, each as its TopicSpec says (a bare name:
    topic_partitions(), the broker's default configuration); the names it created."""
    specs = [t if isinstance(t, TopicSpec) else TopicSpec(t, topic_partitions(settings))
             for t in topics]
    admin = admin_client(settings)
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [NewTopic(spec.name, num_partitions=spec.partitions, replication_factor=-1,
                        config=dict(spec.config))
               for spec in specs if spec.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(missing, operation_timeout=timeout)
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    _wait_visible(admin, {t.topic: t.num_partitions for t in missing}, timeout)
    return created


def _wait_visible(admin: AdminClient, topics: Mapping[str, int], timeout: float) -> None:
    """Until the broker's metadata shows every topic with its partitions. Kafka answers
    CreateTopics once its controller has the topic; the broker that serves metadata learns
    of it a moment later, and a client asking then is told UNKNOWN_TOPIC_OR_PART."""
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout).topics
        waiting = [name for name, count in topics.items()
                   if name not in metadata or metadata[name].error is not None
                   or len(metadata[name].partitions) < count]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise KafkaException(f"topics created but not visible after {timeout:.0f} s: "
                                 f"{', '.join(sorted(waiting))}")
        time.sleep(0.05)  # polling the broker's metadata, bounded by the deadline
