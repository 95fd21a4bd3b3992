"""A guard against a record the fetch skipped, on Tansu only: a consumer tailing a partition
can get offset N+1 before N is readable and move past N for good (docs/architecture.md,
"Two brokers"). Our producers write one record per batch there, so offsets have no holes:
a record past the next expected offset makes the dispatcher seek back, drop what came past
it and read again (`admit`, on each poll's messages). A hole still there after
`give_up_after_s` (a record the broker lost) is accepted once, with a console line. Apache
Kafka has legitimate holes (transaction markers, compaction) and needs none of this."""

from __future__ import annotations

import time
from collections.abc import Callable, Container
from typing import NamedTuple

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from tools.runtime.eventing.partitions import offset_of

TP = tuple[str, int]


class GapCheck(NamedTuple):
    rewind_to: int | None = None  # seek back here and drop this record
    given_up: range | None = None  # offsets accepted as missing (the broker lost them)


class OffsetGapGuard:
    """Per assigned partition, the offset of the next record expected from the consumer.
    Used by the consumer thread only."""

    def __init__(self, *, say: Callable[[str], None],
                 on_refetch: Callable[[], None] = lambda: None, give_up_after_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._say, self._on_refetch = say, on_refetch
        self._expected: dict[TP, int] = {}
        self._hole: dict[TP, tuple[int, float]] = {}  # expected offset, first seen at
        self._give_up_after = give_up_after_s
        self._clock = clock

    def start(self, key: TP, offset: int) -> None:
        """The partition was assigned and will be read from `offset` (its committed one)."""
        self._expected[key] = offset
        self._hole.pop(key, None)

    def forget(self, key: TP) -> None:
        self._expected.pop(key, None)
        self._hole.pop(key, None)

    def check(self, key: TP, offset: int) -> GapCheck:
        """May the record at `offset` be handed out, or was one before it skipped?"""
        expected = self._expected.get(key)
        given_up = None
        if expected is not None and offset > expected:
            hole = self._hole.get(key)
            if hole is None or hole[0] != expected:  # a new hole: its clock starts now
                hole = self._hole[key] = (expected, self._clock())
            if self._clock() - hole[1] < self._give_up_after:
                return GapCheck(rewind_to=expected)
            given_up = range(expected, offset)
        self._hole.pop(key, None)
        self._expected[key] = offset + 1
        return GapCheck(given_up=given_up)

    def admit(self, consumer: Consumer, messages: list[Message], held: Container[TP]
              ) -> list[Message]:
        """What of `messages` (one poll's, in order) may be handed out. After a skipped
        record, the rest of that partition's messages are dropped and `consumer` is sent
        back to it. Errors and partitions not `held` pass as they are."""
        admitted: list[Message] = []
        rewound: set[TP] = set()
        for message in messages:
            if message.error() is not None:
                admitted.append(message)
                continue
            key = (str(message.topic()), int(message.partition() or 0))
            if key in rewound:
                continue
            if key not in held:
                admitted.append(message)
                continue
            check = self.check(key, offset_of(message))
            if check.given_up is not None:
                self._say(f"{key[0]}/{key[1]} offsets {check.given_up.start}.."
                          f"{check.given_up.stop - 1} never became readable; going on "
                          "without them")
            if check.rewind_to is None:
                admitted.append(message)
                continue
            rewound.add(key)
            self._on_refetch()
            try:
                consumer.seek(TopicPartition(key[0], key[1], check.rewind_to))
            except KafkaException as exc:  # the partition's next record tries again
                self._say(f"seek back to {key[0]}/{key[1]}@{check.rewind_to} failed: {exc}")
        return admitted
