"""The KafkaSource emulation: one consumer per KafkaSource manifest, each record delivered to
its sink with Knative's rules (record_delivery.py). One consumer thread owns the
confluent-kafka Consumer (poll, pause/resume, commit, rebalance callbacks) and hands records
to a PartitionWorker per assigned partition; it commits only up to the first record not yet
delivered or dead-lettered. On revoke or stop, queued records are dropped, retry waits end,
requests on the wire get `revoke_grace` seconds, and the rest is delivered again later.
pause() then also closes the consumer, leaving the group (so `saga replay` may move its
offsets); resume() joins again from the committed offsets."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from tools.infra.kafka_clients import consumer_config, is_tansu
from tools.manifests.specs import KafkaSourceSpec
from tools.runtime.console import Console, LogFile
from tools.runtime.eventing.dead_letters import DeadLetterProducer
from tools.runtime.eventing.delivery import HttpSender, Target
from tools.runtime.eventing.offset_gaps import OffsetGapGuard
from tools.runtime.eventing.partitions import PartitionWorker, partition_lags
from tools.runtime.eventing.record_delivery import RecordDelivery, SourceStats
from tools.settings import LocalSettings

__all__ = ["KafkaSourceDispatcher", "SourceStats"]

TP = tuple[str, int]
_PAUSE_ABOVE, _RESUME_BELOW = 2000, 500  # queued records per partition
_COMMIT_EVERY_S, _LAG_EVERY_S = 0.2, 1.0
# How long one poll waits for a record: short while deliveries are in flight or finished
# offsets wait to be committed (this thread commits them between polls), long when the
# source is settled. A poll returns as soon as a record arrives either way, so the wait
# costs no latency; a settled source wakes 2 times a second instead of 20.
_BUSY_POLL_S, _SETTLED_POLL_S = 0.05, 0.5


class KafkaSourceDispatcher:
    def __init__(
        self,
        spec: KafkaSourceSpec,
        *,
        settings: LocalSettings,
        target: Target,
        request_timeout: float,
        sender: HttpSender,
        console: Console,
        dead_letters: DeadLetterProducer | None = None,
        dead_letter_topic: str | None = None,
        runtime_log: LogFile | None = None,
        unordered_concurrency: int = 8,
        revoke_grace: float = 10.0,
    ) -> None:
        self.spec = spec
        self._config = consumer_config(settings, spec.consumer_group, spec.initial_offset) | {
            "client.id": f"kafka-source-{spec.name}", "on_commit": self._on_commit}
        self._console = console
        self._delivery = RecordDelivery(
            spec, target=target, request_timeout=request_timeout, sender=sender,
            console=console, dead_letters=dead_letters, dead_letter_topic=dead_letter_topic,
            runtime_log=runtime_log)
        self._concurrency = unordered_concurrency if spec.ordering == "unordered" else 1
        self._revoke_grace = revoke_grace
        self._workers: dict[TP, PartitionWorker] = {}
        # Tansu can let a fetch skip a record (offset_gaps.py); Kafka cannot.
        self._gaps = OffsetGapGuard(
            say=lambda line: console.line(f"kafka-source {spec.name}: {line}"),
            on_refetch=self._delivery.count_refetch) if is_tansu(settings) else None
        self._committed: dict[TP, int] = {}
        self._paused: set[TP] = set()
        self._stopping = threading.Event()
        self._pausing = threading.Event()  # asked to leave the group
        self._left_group = threading.Event()  # has left it; cleared when it rejoins
        self._resumed = threading.Event()
        self._assigned = threading.Event()
        self._thread: threading.Thread | None = None

    # --- public API (any thread) ----------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._consume, name=f"source-{self.spec.name}",
                                        daemon=True)
        self._thread.start()

    def wait_assigned(self, timeout: float) -> bool:
        """True once the group gave this consumer its partitions (tests, startup)."""
        return self._assigned.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop consuming, let in-flight requests finish (up to revoke_grace), commit what
        is finished, leave the group."""
        self._stopping.set()
        self._resumed.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def pause(self, timeout: float = 30.0) -> bool:
        """Finish or abandon in-flight requests (as on stop), commit, leave the group; True
        once it has left it."""
        self._resumed.clear()
        self._pausing.set()
        return self._left_group.wait(timeout)

    def resume(self) -> None:
        """Join the group again (from its committed offsets); no-op unless paused."""
        self._pausing.clear()
        self._resumed.set()

    @property
    def paused(self) -> bool:
        return self._pausing.is_set()

    def stats(self) -> SourceStats:
        stats = self._delivery.stats()
        stats.paused = self.paused
        return stats

    # --- the consumer thread ----------------------------------------------------------------

    def _consume(self) -> None:
        try:
            while not self._stopping.is_set():
                self._member()
                if self._pausing.is_set() and not self._stopping.is_set():
                    self._left_group.set()
                    self._console.line(f"kafka-source {self.spec.name}: paused (left "
                                       f"consumer group {self.spec.consumer_group})")
                    self._resumed.wait()
                    self._left_group.clear()
                    if not self._stopping.is_set():
                        self._console.line(f"kafka-source {self.spec.name}: resumed")
        except BaseException as exc:
            self._console.line(f"kafka-source {self.spec.name}: stopped by an error: {exc!r}")
            raise

    def _member(self) -> None:
        """One membership of the consumer group: until stopped or paused."""
        consumer = Consumer(self._config)
        try:
            consumer.subscribe(list(self.spec.topics), on_assign=self._on_assign,
                               on_revoke=self._on_revoke, on_lost=self._on_lost)
            last_commit = last_lag = time.monotonic()
            while not self._stopping.is_set() and not self._pausing.is_set():
                batch: dict[TP, list[Message]] = {}
                messages = _next_messages(consumer, self._poll_wait())
                if self._gaps is not None:
                    messages = self._gaps.admit(consumer, messages, self._workers)
                for message in messages:
                    error = message.error()
                    if error is not None:
                        self._consumer_error(error)
                        continue
                    key = (str(message.topic()), int(message.partition() or 0))
                    batch.setdefault(key, []).append(message)
                for tp, messages in batch.items():
                    worker = self._workers.get(tp)
                    if worker is not None:  # else revoked meanwhile: the next owner reads them
                        worker.submit(messages)
                self._flow_control(consumer)
                now = time.monotonic()
                if now - last_commit >= _COMMIT_EVERY_S:
                    self._commit(consumer, list(self._workers), asynchronous=True)
                    last_commit = now
                if now - last_lag >= _LAG_EVERY_S:
                    self._update_lag(consumer)
                    last_lag = now
            self._retire(consumer, list(self._workers), commit=True)
        finally:
            consumer.close()
            self._assigned.clear()
            self._delivery.set_lag({})

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._gaps is not None and partitions:
            self._expect_committed(consumer, partitions)
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if key not in self._workers:
                self._workers[key] = PartitionWorker(
                    tp.topic, tp.partition, self._delivery.handle,
                    concurrency=self._concurrency, name=f"source-{self.spec.name}")
        self._delivery.set_partitions(len(self._workers))
        if partitions:
            self._assigned.set()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._retire(consumer, [(tp.topic, tp.partition) for tp in partitions], commit=True)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost, not revoked: another member may own them already, committing could
        # rewind its progress.
        self._retire(consumer, [(tp.topic, tp.partition) for tp in partitions], commit=False)

    def _retire(self, consumer: Consumer, keys: list[TP], *, commit: bool) -> None:
        workers = {key: self._workers[key] for key in keys if key in self._workers}
        for worker in workers.values():
            worker.interrupt()
        deadline = time.monotonic() + self._revoke_grace
        for worker in workers.values():
            worker.wait_idle(deadline)
        if commit:
            self._commit(consumer, list(workers), asynchronous=False)
        for key in workers:
            del self._workers[key]
            if self._gaps is not None:
                self._gaps.forget(key)
            self._committed.pop(key, None)
            self._paused.discard(key)
        self._delivery.set_partitions(len(self._workers))

    def _commit(self, consumer: Consumer, keys: list[TP], *, asynchronous: bool) -> None:
        offsets = []
        for key in keys:
            worker = self._workers.get(key)
            position = worker.tracker.committable() if worker else None
            if position is not None and position > self._committed.get(key, -1):
                offsets.append(TopicPartition(key[0], key[1], position))
        if not offsets:
            return
        try:
            if asynchronous:
                consumer.commit(offsets=offsets, asynchronous=True)
            else:
                consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                self._console.line(f"kafka-source {self.spec.name}: commit failed: {exc}")
            return
        for tp in offsets:
            self._committed[(tp.topic, tp.partition)] = tp.offset

    def _on_commit(self, error: KafkaError | None, offsets: list[TopicPartition]) -> None:
        # Served by consume() on the consumer thread. A failed asynchronous commit (e.g.
        # during a rebalance) is forgotten, so the next cycle commits that offset again.
        for tp in offsets:
            key = (tp.topic, tp.partition)
            failed = error is not None or tp.error is not None
            if failed and self._committed.get(key) == tp.offset:
                del self._committed[key]

    def _expect_committed(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Tell the gap guard where each assigned partition will be read from."""
        assert self._gaps is not None
        for tp in partitions:  # nothing known from an earlier assignment still counts
            self._gaps.forget((tp.topic, tp.partition))
        try:
            committed = consumer.committed(partitions, timeout=10)
        except KafkaException as exc:  # unknown: the first record read sets it
            self._console.line(f"kafka-source {self.spec.name}: no committed offsets: {exc}")
            return
        for tp in committed:
            if tp.offset >= 0:
                self._gaps.start((tp.topic, tp.partition), tp.offset)

    def _poll_wait(self) -> float:
        settled = all(worker.tracker.settled(self._committed.get(key))
                      for key, worker in self._workers.items())
        return _SETTLED_POLL_S if settled else _BUSY_POLL_S

    def _flow_control(self, consumer: Consumer) -> None:
        # Bounded memory: stop fetching a partition whose worker is far behind.
        for key, worker in self._workers.items():
            queued = worker.queued()
            if key not in self._paused and queued > _PAUSE_ABOVE:
                consumer.pause([TopicPartition(*key)])
                self._paused.add(key)
            elif key in self._paused and queued < _RESUME_BELOW:
                consumer.resume([TopicPartition(*key)])
                self._paused.discard(key)

    def _update_lag(self, consumer: Consumer) -> None:
        self._delivery.set_lag(partition_lags(consumer, self._workers))

    def _consumer_error(self, error: KafkaError) -> None:
        if error.code() != KafkaError._PARTITION_EOF:
            self._console.line(f"kafka-source {self.spec.name}: consumer error: {error}")


def _next_messages(consumer: Consumer, wait: float) -> list[Message]:
    """What has arrived, as soon as something has: consume() waits for its whole timeout
    unless num_messages arrive (measured: +25 ms per hop at 50 ms), so wait with poll() for
    the first record, then take what is already queued without waiting."""
    first = consumer.poll(wait)
    if first is None:
        return []
    return [first, *consumer.consume(num_messages=499, timeout=0)]
