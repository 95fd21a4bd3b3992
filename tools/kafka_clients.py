"""The Kafka clients only the tools use: the KafkaSource emulation's consumers and topic
administration (a function in a pod only produces: common/kafka.py).

Real Kafka gets conventional settings. The embedded Tansu broker (settings.kafka_embedded)
gets the workarounds docs/architecture.md lists under "Two brokers": short session timeouts
(its first assignment arrives after half of session.timeout.ms), fewer partitions and a
short fetch wait (default fetch settings ran at ~900 msg/s).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from common.kafka import client_config
from common.settings import Settings
from tools.settings import LocalSettings

# The embedded broker's defaults (see topic_partitions below and docs/benchmarks.md). Idle,
# it took 36% of a core with 3 partitions and a 10 ms fetch wait, 12% with 1 and 30 ms;
# under load 25-30 ms of CPU per order with 3/10, 15-16 with 2/20 or 1/25. Latency barely
# moved (p99 at 15 orders/s: 347 ms with 3/10, 306 with 1/25): the hop's wait grows, but
# the CPU it frees shortens every queue.
EMBEDDED_PARTITIONS = 2
EMBEDDED_FETCH_WAIT_MS = 20


def consumer_config(settings: LocalSettings, group_id: str, initial_offset: str) -> dict[str, Any]:
    config = client_config(settings) | {
        "group.id": group_id,
        # Offsets are committed by hand, only after the event was handled or dead-lettered.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": initial_offset,
        "enable.partition.eof": False,
    }
    if settings.kafka_embedded:
        config |= {
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": EMBEDDED_FETCH_WAIT_MS,
        }
    else:
        config["fetch.wait.max.ms"] = 50
    if settings.kafka_fetch_wait_ms is not None:
        config["fetch.wait.max.ms"] = settings.kafka_fetch_wait_ms
    return config


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings))


def topic_partitions(settings: LocalSettings) -> int:
    """Partitions for a topic the local runtime creates. The embedded broker (Tansu 0.6)
    answers every fetch by listing what the partition holds and sleeps the whole fetch wait
    even when it has records, so fewer partitions and a longer wait cost it less CPU per
    order (measured in docs/benchmarks.md); production topics are sized in kafka-sources/topics/."""
    if settings.topic_partitions is not None:
        return settings.topic_partitions
    return EMBEDDED_PARTITIONS if settings.kafka_embedded else 3


def ensure_topics(
    settings: LocalSettings, names: list[str], partitions: int | None = None, timeout: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created."""
    admin = admin_client(settings)
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [name for name in names if name not in existing]
    if not missing:
        return []
    count = partitions or topic_partitions(settings)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=count, replication_factor=-1) for name in missing],
        operation_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created
