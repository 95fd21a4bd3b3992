"""Consumer-group and offset queries for the operator commands, against any Kafka, through
the admin API and a consumer that never joins a group. "Is anyone consuming" is read from
the group's state, as Kafka decides whether a group's offsets may change (only an Empty or
Dead group's); that covers Tansu too, which lists no members even for an active group.
Tansu's other difference is handled here, only for it: offsets_for_times answers 0, not
-1, for a time after the last record, so that record's timestamp is checked."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from common.settings import Settings
from tools.infra.kafka_clients import admin_client, is_tansu, tool_config

TP = tuple[str, int]
T = TypeVar("T")
_TIMEOUT = 15.0
_COORDINATOR_NOT_READY = frozenset({KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                                    KafkaError.COORDINATOR_NOT_AVAILABLE,
                                    KafkaError.NOT_COORDINATOR})
# Group states in which members hold partitions and Kafka refuses offset changes.
ACTIVE_STATES = frozenset({"STABLE", "PREPARING_REBALANCE", "COMPLETING_REBALANCE",
                           "RECONCILING", "ASSIGNING"})


@dataclass(frozen=True)
class GroupInfo:
    state: str  # EMPTY, STABLE, ... (confluent-kafka's ConsumerGroupState name), or DEAD
    members: int  # as the broker reports them (Tansu reports none)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES or self.members > 0


class KafkaOps:
    """One admin client and one group-less consumer, for the life of a command."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.admin: AdminClient = admin_client(settings)
        self.consumer = Consumer(tool_config(settings) | {
            "group.id": f"saga-ops-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})

    def close(self) -> None:
        self.consumer.close()

    def partitions(self, topics: Iterable[str]) -> list[TP]:
        """Every partition of `topics` that exists (a topic not created yet has none)."""
        found: list[TP] = []
        for topic in topics:
            meta = self.consumer.list_topics(topic, timeout=_TIMEOUT).topics.get(topic)
            if meta is None or meta.error is not None:
                continue
            found.extend((topic, p) for p in sorted(meta.partitions))
        return found

    def watermarks(self, tps: Iterable[TP]) -> dict[TP, tuple[int, int]]:
        """(low, high) of each partition: the first offset kept, the next one written."""
        marks = {}
        for topic, partition in tps:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=_TIMEOUT, cached=False)
            marks[(topic, partition)] = (int(low), int(high))
        return marks

    def committed(self, group: str) -> dict[TP, int]:
        """The group's committed offsets (partitions without a commit are absent)."""
        request = [ConsumerGroupTopicPartitions(group)]
        result = _patiently(lambda: self.admin.list_consumer_group_offsets(request)[group]
                            .result(_TIMEOUT))
        return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or []
                if tp.offset is not None and tp.offset >= 0 and tp.error is None}

    def group(self, group: str) -> GroupInfo:
        try:
            described = _patiently(lambda: self.admin.describe_consumer_groups([group])[group]
                                   .result(_TIMEOUT))
        except KafkaException as exc:
            if "GROUP_ID_NOT_FOUND" in str(exc):
                return GroupInfo("DEAD", 0)
            raise
        return GroupInfo(described.state.name, len(described.members or []))

    def offsets_for_time(self, tps: Iterable[TP], millis: int,
                         ends: Mapping[TP, tuple[int, int]]) -> dict[TP, int]:
        """The first offset whose timestamp is >= `millis`, or the end when none is."""
        wanted = [TopicPartition(t, p, millis) for t, p in tps]
        if not wanted:
            return {}
        found = self.consumer.offsets_for_times(wanted, timeout=_TIMEOUT)
        offsets: dict[TP, int] = {}
        for tp in found:
            key = (tp.topic, tp.partition)
            low, high = ends[key]
            offset = tp.offset if tp.offset is not None and tp.offset >= 0 else high
            if (is_tansu(self._settings) and offset < high
                    and self._last_timestamp(key, high) < millis):
                offset = high  # Tansu's "0" for a time after the last record
            offsets[key] = max(low, offset)
        return offsets

    def alter(self, group: str, offsets: Mapping[TP, int]) -> None:
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())])
        result = self.admin.alter_consumer_group_offsets([request])[group].result(_TIMEOUT)
        failed = [f"{tp.topic}/{tp.partition}: {tp.error}" for tp in
                  result.topic_partitions or [] if tp.error is not None]
        if failed:
            raise KafkaException(f"offsets of {group} not changed: {'; '.join(failed)}")

    def _last_timestamp(self, tp: TP, high: int) -> int:
        reader = Consumer(tool_config(self._settings) | {
            "group.id": f"saga-ops-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
            "fetch.wait.max.ms": 10})
        try:
            reader.assign([TopicPartition(tp[0], tp[1], high - 1)])
            message = reader.poll(_TIMEOUT)
            if message is None or message.error() is not None:
                return 2**63 - 1  # unknown: trust the broker's answer
            return int(message.timestamp()[1])
        finally:
            reader.close()


def _patiently(ask: Callable[[], T]) -> T:
    """ask(), again while the group coordinator is not ready (a broker that just started
    loads its offsets topic first: COORDINATOR_LOAD_IN_PROGRESS), for up to _TIMEOUT."""
    deadline = time.monotonic() + _TIMEOUT
    while True:
        try:
            return ask()
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            waiting = isinstance(error, KafkaError) and (
                error.code() in _COORDINATOR_NOT_READY or error.retriable())
            if not waiting or time.monotonic() > deadline:
                raise
        time.sleep(0.1)  # polling the broker, bounded by the deadline


@contextmanager
def kafka_ops(settings: Settings) -> Iterator[KafkaOps]:
    ops = KafkaOps(settings)
    try:
        yield ops
    finally:
        ops.close()
