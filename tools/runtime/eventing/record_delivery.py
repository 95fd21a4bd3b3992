"""Delivery of one Kafka record of a KafkaSource to its sink, the Knative way: map it to a
binary CloudEvent request, retry per `delivery`, dead-letter it (or log and skip it when
there is no dead-letter sink), count what happened, and write a readable line for retries
and dead letters.

Thread-safe: every partition worker of a source calls handle() concurrently; the counters
are guarded by a lock, the sender and the dead-letter producer are thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from confluent_kafka import Message

from tools.manifests.specs import KafkaSourceSpec
from tools.runtime.console import Console, LogFile, ecs_event
from tools.runtime.eventing.dead_letters import (
    DeadLetterProducer,
    dead_letter_record,
    error_extensions,
)
from tools.runtime.eventing.delivery import HttpSender, Response, Target, Verdict, deliver
from tools.runtime.eventing.http_event import HttpEvent, http_event


@dataclass
class SourceStats:
    name: str
    consumer_group: str
    sink: str
    topics: list[str]
    delivered: int = 0
    retries: int = 0
    dead_lettered: int = 0
    dropped: int = 0  # failed without a dead-letter sink: logged and skipped
    abandoned: int = 0  # interrupted by a revoke or stop: delivered again later
    refetched: int = 0  # times a fetch skipped a record and the partition was read again
    partitions: int = 0
    paused: bool = False  # left its consumer group on request (saga replay --pause)
    lag: int = 0
    partition_lag: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RecordDelivery:
    def __init__(
        self,
        spec: KafkaSourceSpec,
        *,
        target: Target,
        request_timeout: float,
        sender: HttpSender,
        console: Console,
        dead_letters: DeadLetterProducer | None = None,
        dead_letter_topic: str | None = None,
        runtime_log: LogFile | None = None,
    ) -> None:
        self.spec = spec
        self._target, self._sender, self._console = target, sender, console
        self._timeout = spec.delivery.timeout or request_timeout
        self._dead_letters, self._dlq_topic = dead_letters, dead_letter_topic
        self._log = runtime_log
        self._stats = SourceStats(spec.name, spec.consumer_group, spec.sink, list(spec.topics))
        self._lock = threading.Lock()

    def stats(self) -> SourceStats:
        with self._lock:
            return SourceStats(**{**asdict(self._stats),
                                  "partition_lag": dict(self._stats.partition_lag)})

    def set_partitions(self, count: int) -> None:
        with self._lock:
            self._stats.partitions = count

    def set_lag(self, lags: dict[str, int]) -> None:
        with self._lock:
            self._stats.partition_lag = lags
            self._stats.lag = sum(lags.values())

    def handle(self, message: Message, interrupted: threading.Event) -> bool:
        """True once the record is finished (delivered, dead-lettered or skipped); False
        when `interrupted` stopped it first (its offset must not be committed)."""
        while not interrupted.is_set():
            try:
                event = http_event(message, source_name=self.spec.name,
                                   overrides=self.spec.ce_overrides)
                return self._deliver(message, event, interrupted)
            except Exception as exc:  # a bug: say so, and keep the partition going
                self._console.line(
                    f"kafka-source {self.spec.name}: failed to handle "
                    f"{message.topic()}/{message.partition()}@{message.offset()}: {exc!r};"
                    " trying again in 5 s")
                interrupted.wait(5)
        return False

    def _deliver(self, message: Message, event: HttpEvent, interrupted: threading.Event) -> bool:
        def on_retry(attempt: int, response: Response, delay: float) -> None:
            self._count("retries")
            self._report("knative.delivery.retry", event, response, "failure",
                         f"retry {attempt}/{self.spec.delivery.retry} in {delay:.2f} s "
                         f"({_describe(response)})")

        result = deliver(self._sender, self._target, event.headers, event.body,
                         self.spec.delivery, timeout=self._timeout, interrupted=interrupted,
                         on_retry=on_retry)
        if result.verdict is Verdict.SUCCESS:
            self._count("delivered")
            return True
        if result.verdict is Verdict.ABANDONED:
            self._count("abandoned")
            return False
        if self._dead_letters is None or self._dlq_topic is None:
            self._count("dropped")
            self._report("knative.delivery.dropped", event, result.last, "failure",
                         f"failed after {result.attempts} attempt(s) ({_describe(result.last)});"
                         " no dead-letter sink: skipped", level="error")
            return True
        extensions = error_extensions(result.url or self._target.url, result.last)
        headers, value = dead_letter_record(message, event, extensions)
        if not self._dead_letters.send(self._dlq_topic, message.key(), headers, value,
                                       interrupted=interrupted):
            self._count("abandoned")
            return False
        self._count("dead_lettered")
        self._report("knative.delivery.dead_lettered", event, result.last, "failure",
                     f"dead-lettered to {self._dlq_topic} after {result.attempts} attempt(s) "
                     f"({_describe(result.last)})", level="warning")
        return True

    def count_refetch(self) -> None:
        self._count("refetched")

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self._stats, name, getattr(self._stats, name) + 1)

    def _report(self, action: str, event: HttpEvent, response: Response, outcome: str,
                message: str, level: str = "info") -> None:
        cloudevents: Mapping[str, Any] = {
            "id": event.headers.get("ce-id"), "type": event.event_type,
            "source": event.headers.get("ce-source"), "subject": event.subject}
        doc = ecs_event(action, service=self.spec.sink, message=message, outcome=outcome,
                        level=level, cloudevents=cloudevents,
                        labels={"order_id": event.subject or "", "kafka_source": self.spec.name,
                                "http_status": str(response.status or "")})
        if self._log is not None:
            self._log.write_doc(doc)
        self._console.ecs(doc)


def _describe(response: Response) -> str:
    return f"HTTP {response.status}" if response.status is not None else str(response.error)
