"""Per-partition delivery workers, so a slow or retrying partition never blocks another.

`ordering: ordered` is a worker with one thread: one request in flight per partition,
records in offset order. `unordered` is the same worker with several threads. Either way
the offset to commit is the first record not yet finished (OffsetTracker), so a crash
never skips an unhandled record, whatever order the threads finish in.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

# Handles one record; True when it is finished (delivered, dead-lettered or skipped),
# False when it was abandoned because the worker was interrupted (revoked or stopping).
Handler = Callable[[Message, threading.Event], bool]


def offset_of(message: Message) -> int:
    offset = message.offset()
    assert offset is not None, "consumed messages have offsets"
    return offset


class OffsetTracker:
    """Offsets of one partition in the order they were handed out. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: collections.deque[int] = collections.deque()
        self._finished: set[int] = set()
        self._next: int | None = None  # first offset not yet finished, once known

    def add(self, offset: int) -> None:
        with self._lock:
            self._pending.append(offset)

    def finish(self, offset: int) -> None:
        with self._lock:
            self._finished.add(offset)
            while self._pending and self._pending[0] in self._finished:
                done = self._pending.popleft()
                self._finished.discard(done)
                self._next = done + 1

    def committable(self) -> int | None:
        """The offset to commit (Kafka commits the next offset to read), or None when no
        record has been finished yet."""
        with self._lock:
            return self._next

    def settled(self, committed: int | None) -> bool:
        """Nothing handed out is unfinished, and `committed` is as far as it can go."""
        with self._lock:
            return not self._pending and self._next == committed

    def low_water(self) -> int | None:
        """The first offset not finished: pending or, when all are done, the next one."""
        with self._lock:
            return self._pending[0] if self._pending else self._next


class PartitionWorker:
    """Delivers the records of one topic-partition on `concurrency` threads.

    submit() is called by the consumer thread; the worker threads call `handle`. After
    interrupt() no record is taken from the queue any more and handlers see the event set
    (a retry backoff ends at once); a request already on the wire runs to its end.
    """

    def __init__(self, topic: str, partition: int, handle: Handler, *, concurrency: int = 1,
                 name: str = "") -> None:
        self.topic, self.partition = topic, partition
        self.tracker = OffsetTracker()
        self.interrupted = threading.Event()
        self._handle = handle
        self._cond = threading.Condition()
        self._queue: collections.deque[Message] = collections.deque()
        self._busy = 0
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{topic}-{partition}-{i}",
                             daemon=True)
            for i in range(max(1, concurrency))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, messages: Iterable[Message]) -> None:
        with self._cond:
            for message in messages:
                self.tracker.add(offset_of(message))
                self._queue.append(message)
            self._cond.notify_all()

    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def interrupt(self) -> None:
        with self._cond:
            self.interrupted.set()
            self._queue.clear()  # never started: the next owner of the partition gets them
            self._cond.notify_all()

    def wait_idle(self, deadline: float) -> bool:
        """After interrupt(): wait until no handler runs, or the (monotonic) deadline. A
        handler still running then is abandoned: its record is not committed."""
        with self._cond:
            while self._busy and time.monotonic() < deadline:
                self._cond.wait(max(0.0, min(0.1, deadline - time.monotonic())))
            return self._busy == 0

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self.interrupted.is_set():
                    self._cond.wait()
                if self.interrupted.is_set():
                    return
                message = self._queue.popleft()
                self._busy += 1
            finished = False
            try:
                finished = self._handle(message, self.interrupted)
            finally:
                # Finished before not busy: wait_idle() then sees it in committable().
                if finished:
                    self.tracker.finish(offset_of(message))
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
            if not finished:
                return  # abandoned: only happens once interrupted


def partition_lags(consumer: Consumer, workers: Mapping[tuple[str, int], PartitionWorker]
                   ) -> dict[str, int]:
    """Records not yet finished per assigned partition ("topic/p"), from the consumer's
    cached high watermarks: what runtime-state.json shows while `saga up` runs (`saga
    status` asks the broker for committed offsets instead)."""
    lags: dict[str, int] = {}
    for (topic, partition), worker in workers.items():
        tp = TopicPartition(topic, partition)
        try:
            watermarks = consumer.get_watermark_offsets(tp, cached=True)
            low_water = worker.tracker.low_water()
            if low_water is None:
                low_water = consumer.position([tp])[0].offset
        except KafkaException:
            continue
        if watermarks is None or watermarks[1] < 0 or low_water < 0:
            continue
        lags[f"{topic}/{partition}"] = max(0, watermarks[1] - low_water)
    return lags
