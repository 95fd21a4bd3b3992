"""What runs: consumer lag per KafkaSource, from Kafka's admin API, and which functions are
up or scaled to zero.

The sources are the console's own configuration, derived from the catalogue as the
manifests are (one KafkaSource per consuming function, consumer group `saga-<function>`;
tests/contract/test_console_manifests.py holds the two together), so it needs no
manifests in its pod. Functions' state is Knative's on a cluster (`kn service list`);
locally the console reads it from the runtime-state.json `./taskw up` writes and names in
SAGA_RUNTIME_STATE_FILE.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import BaseModel

from common.events import catalogue as c
from common.settings import Settings

CACHE_S = 5.0  # the page polls; Kafka is asked at most this often per process
TIMEOUT_S = 5.0
STATE_FILE = "runtime-state.json"


class FunctionState(BaseModel):
    name: str
    state: str
    port: int | None


class SourceLag(BaseModel):
    source: str
    consumer_group: str
    lag: int = 0
    partitions: int = 0


class Runtime(BaseModel):
    at: datetime
    sources: list[SourceLag]
    lag_note: str | None
    functions: list[FunctionState]
    functions_note: str | None


def kafka_sources() -> list[tuple[str, str, list[str]]]:
    """(KafkaSource, consumer group, topics) of every source: each consuming function's,
    and the dlq's on the dead-letter topic."""
    consumers = sorted({f for spec in c.CATALOGUE.values() for f in spec.consumers})
    return ([(f, f"saga-{f}", c.types_consumed_by(f)) for f in consumers]
            + [(c.DLQ, f"saga-{c.DLQ}", [c.DEAD_LETTER_TOPIC])])


class LagReader:
    """One admin client and one group-less consumer, made on first use and closed by
    close() (the console's resources hold one per process: wiring.ConsoleResources);
    the last answer is kept CACHE_S."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._clients: tuple[AdminClient, Consumer] | None = None
        self._cached: tuple[float, list[SourceLag]] | None = None

    def lag(self) -> list[SourceLag]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < CACHE_S:
                return self._cached[1]
            if self._clients is None:
                self._clients = (AdminClient(self._config), Consumer(self._config | {
                    "group.id": f"saga-console-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False}))
            admin, consumer = self._clients
            found = [_source_lag(admin, consumer, *source) for source in kafka_sources()]
            self._cached = (time.monotonic(), found)
            return found

    def close(self) -> None:
        with self._lock:
            if self._clients is not None:
                self._clients[1].close()
            self._clients = self._cached = None


def _source_lag(admin: AdminClient, consumer: Consumer, name: str, group: str,
                topics: list[str]) -> SourceLag:
    asked = [ConsumerGroupTopicPartitions(group)]
    committed = {(tp.topic, tp.partition): tp.offset for tp in
                 admin.list_consumer_group_offsets(asked)[group].result(TIMEOUT_S)
                 .topic_partitions or [] if tp.error is None and tp.offset >= 0}
    lag = partitions = 0
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        if meta is None or meta.error is not None:
            continue
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                       timeout=TIMEOUT_S, cached=False)
            # Never committed: the source starts from the earliest (initialOffset).
            lag += max(0, high - committed.get((topic, partition), low))
            partitions += 1
    return SourceLag(source=name, consumer_group=group, lag=lag, partitions=partitions)


def runtime(settings: Settings, reader: LagReader) -> Runtime:
    note = None
    try:
        sources = reader.lag()
    except (KafkaException, RuntimeError) as exc:
        sources, note = [], f"Kafka did not answer: {exc}"
    functions, functions_note = functions_state(settings)
    return Runtime(at=datetime.now(UTC), sources=sources, lag_note=note,
                   functions=functions, functions_note=functions_note)


def _local_state(settings: Settings) -> dict[str, Any] | None:
    if settings.runtime_state_file is None:
        return None
    try:
        state = json.loads(settings.runtime_state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def functions_state(settings: Settings) -> tuple[list[FunctionState], str | None]:
    state = _local_state(settings)
    if state is None and settings.runtime_state_file is not None:
        return [], (f"no {STATE_FILE} readable at {settings.runtime_state_file} "
                    "(SAGA_RUNTIME_STATE_FILE): the local runtime, `./taskw up`, writes it")
    if state is None:
        return [], ("functions are Knative Services here: `kn service list -n order-saga` "
                    "shows which are up; a min-scale 0 one with no pods scaled to zero")
    functions = state.get("functions") or {}
    return [FunctionState(name=name, state=str(doc.get("state")), port=doc.get("port"))
            for name, doc in sorted(functions.items()) if isinstance(doc, dict)], None


def local_functions(settings: Settings) -> dict[str, str]:
    """host:port -> function, for the functions of the local runtime (none elsewhere)."""
    functions, _ = functions_state(settings)
    return {f"{host}:{f.port}": f.name for f in functions if f.port
            for host in ("127.0.0.1", "localhost")}
