"""`saga replay`: move a KafkaSource's consumer group back (or forward) so the source
delivers events again, through the Kafka admin API, against any Kafka.

plan() reads, per partition, where the group is (its committed offset, or where it would
start: initialOffset), where it should be (earliest, the first record at or after a time,
or given offsets) and the end; nothing changes. execute() then changes the offsets.
Kafka refuses to change the offsets of a group with members, so an active group is
refused unless the local runtime is told to pause the source (it leaves the group and
joins again afterwards, from the new offsets); on a cluster the operator scales the
KafkaSource's consumers to zero first (PAUSE_ON_A_CLUSTER). Because every step is
idempotent (an inbox per consumer), events delivered again change nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from tools.ops.context import OpsContext, OpsError
from tools.ops.kafka_admin import TP, GroupInfo, KafkaOps
from tools.runtime.specs import KafkaSourceSpec

PAUSE_ON_A_CLUSTER = """\
  on a cluster: scale the KafkaSource's consumers to zero (its scale subresource is
  spec.consumers), wait until they are gone, replay, then scale back:
      kubectl scale kafkasource {name} --replicas=0
      kubectl get kafkasource {name} -o jsonpath='{{.status.consumers}}'   # until 0
      saga replay --source {name} ...
      kubectl scale kafkasource {name} --replicas=1    # the spec.consumers it had
  (if KEDA autoscales the source, pause its ScaledObject too, or it scales it back up)
  locally: add --pause; `saga up` pauses the source and resumes it afterwards"""


@dataclass(frozen=True)
class Target:
    kind: Literal["earliest", "time", "offsets"]
    millis: int = 0  # kind "time": milliseconds since the epoch
    offsets: str = ""  # kind "offsets": P:O,... or TOPIC:P:O,... as given


@dataclass(frozen=True)
class PartitionPlan:
    topic: str
    partition: int
    committed: int | None  # the group's committed offset (None: never committed)
    current: int  # where the group reads next: committed, else per initialOffset
    target: int
    end: int  # high watermark: the offset the next record will get

    @property
    def redelivered(self) -> int:
        """Events delivered again (negative: skipped)."""
        return self.current - self.target


@dataclass(frozen=True)
class SourcePlan:
    source: str
    consumer_group: str
    group: GroupInfo
    partitions: list[PartitionPlan]

    @property
    def redelivered(self) -> int:
        return sum(p.redelivered for p in self.partitions)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "consumer_group": self.consumer_group,
                "group_state": self.group.state, "redelivered": self.redelivered,
                "partitions": [asdict(p) | {"redelivered": p.redelivered}
                               for p in self.partitions]}


def parse_time(text: str) -> int:
    """An ISO 8601 time with a zone, in milliseconds since the epoch."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise OpsError(f"--to-time {text!r} is not an ISO 8601 time; e.g. "
                       "2026-05-01T12:00:00Z or 2026-05-01T14:00:00+02:00") from None
    if moment.tzinfo is None:
        raise OpsError(f"--to-time {text!r} has no time zone: add Z (UTC) or an offset "
                       "such as +02:00, so it means the same on every machine")
    if moment > datetime.now(UTC):
        raise OpsError(f"--to-time {text!r} is in the future: that would skip events, not "
                       "deliver them again (to skip on purpose, use --to-offsets)")
    return int(moment.timestamp() * 1000)


def parse_offsets(text: str, source: KafkaSourceSpec) -> dict[TP, int]:
    """P:O,P:O (a source with one topic) or TOPIC:P:O,... into {(topic, p): offset}."""
    offsets: dict[TP, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = re.fullmatch(r"(?:(?P<topic>[^:]+):)?(?P<p>\d+):(?P<o>\d+)", item)
        if match is None:
            raise OpsError(f"--to-offsets: {item!r} is not PARTITION:OFFSET or "
                           "TOPIC:PARTITION:OFFSET (e.g. 0:120,1:98)")
        topic = match["topic"]
        if topic is None:
            if len(source.topics) != 1:
                raise OpsError(f"--to-offsets: KafkaSource {source.name} reads "
                               f"{len(source.topics)} topics ({', '.join(source.topics)}): "
                               "name the topic, TOPIC:PARTITION:OFFSET")
            topic = source.topics[0]
        elif topic not in source.topics:
            raise OpsError(f"--to-offsets: KafkaSource {source.name} does not read {topic}; "
                           f"it reads {', '.join(source.topics)}")
        offsets[(topic, int(match["p"]))] = int(match["o"])
    if not offsets:
        raise OpsError("--to-offsets: give at least one PARTITION:OFFSET")
    return offsets


def plan(kafka: KafkaOps, source: KafkaSourceSpec, target: Target,
         topics: Sequence[str] = ()) -> SourcePlan:
    unknown = sorted(set(topics) - set(source.topics))
    if unknown:
        raise OpsError(f"--topic {', '.join(unknown)}: KafkaSource {source.name} reads "
                       f"{', '.join(source.topics)}")
    tps = kafka.partitions(topics or source.topics)
    marks = kafka.watermarks(tps)
    committed = kafka.committed(source.consumer_group)
    if target.kind == "earliest":
        targets = {tp: marks[tp][0] for tp in tps}
    elif target.kind == "time":
        targets = kafka.offsets_for_time(tps, target.millis, marks)
    else:
        targets = parse_offsets(target.offsets, source)
        for tp, offset in targets.items():
            if tp not in marks:
                raise OpsError(f"--to-offsets: {tp[0]} has no partition {tp[1]}")
            low, high = marks[tp]
            if not low <= offset <= high:
                raise OpsError(f"--to-offsets: {tp[0]}/{tp[1]} holds offsets {low}..{high}"
                               f" (the end), not {offset}")
    partitions = []
    for tp in tps:
        if tp not in targets:
            continue  # --to-offsets left this partition as it is
        low, high = marks[tp]
        start = low if source.initial_offset == "earliest" else high
        current = committed.get(tp, start)
        partitions.append(PartitionPlan(tp[0], tp[1], committed.get(tp), current,
                                        targets[tp], high))
    return SourcePlan(source.name, source.consumer_group,
                      kafka.group(source.consumer_group), partitions)


def execute(ctx: OpsContext, kafka: KafkaOps, plans: Sequence[SourcePlan], *, pause: bool,
            report: Callable[[str], None]) -> None:
    """Change the offsets of every plan; with `pause`, have the local runtime pause the
    sources first and resume them afterwards (also when changing failed)."""
    active = [p for p in plans if p.group.active]
    if active and not pause:
        first = active[0]
        raise OpsError(
            f"KafkaSource {first.source}'s consumer group {first.consumer_group} is consuming "
            f"(state {first.group.state}); Kafka refuses to move an active group.\n"
            + PAUSE_ON_A_CLUSTER.format(name=first.source))
    control = ctx.control() if pause else None
    if pause and (control is None or not ctx.runtime_shares_kafka()):
        raise OpsError(
            f"--pause needs the local runtime (`./taskw up`) consuming from "
            f"{ctx.settings.kafka_bootstrap_servers}; none is running in {ctx.state_dir}.\n"
            + PAUSE_ON_A_CLUSTER.format(name=plans[0].source if plans else "NAME"))
    paused: list[str] = []
    try:
        for item in plans:
            if control is not None:
                control.pause(item.source)
                paused.append(item.source)
                report(f"paused {item.source}: it left group {item.consumer_group}")
            _wait_inactive(kafka, item.consumer_group)
            changes = {(p.topic, p.partition): p.target for p in item.partitions
                       if p.committed != p.target}
            if changes:
                kafka.alter(item.consumer_group, changes)
            report(f"{item.source}: group {item.consumer_group} moved on "
                   f"{len(changes)} partition(s); {max(item.redelivered, 0)} event(s) will "
                   "be delivered again" + (f", {-item.redelivered} skipped"
                                           if item.redelivered < 0 else ""))
    finally:
        for name in paused:
            assert control is not None
            control.resume(name)
            report(f"resumed {name}")


def _wait_inactive(kafka: KafkaOps, group: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (info := kafka.group(group)).active:
        if time.monotonic() > deadline:
            raise OpsError(f"consumer group {group} still has members (state {info.state}) "
                           f"{timeout:.0f} s after the pause; nothing was changed")
        time.sleep(0.2)  # polling the broker, bounded by the deadline


def render(plans: Sequence[SourcePlan], *, dry_run: bool) -> str:
    lines = []
    for item in plans:
        lines.append(f"KafkaSource {item.source} (group {item.consumer_group}, "
                     f"{item.group.state.lower()})")
        lines.append(f"  {'topic/partition':<42}{'current':>9}{'target':>9}{'end':>9}"
                     f"{'again':>8}")
        lines += [f"  {p.topic + '/' + str(p.partition):<42}{p.current:>9}{p.target:>9}"
                  f"{p.end:>9}{p.redelivered:>8}" for p in item.partitions]
    total = sum(max(p.redelivered, 0) for item in plans for p in item.partitions)
    lines.append(f"{total} event(s) to deliver again" + (" (dry run: nothing changed)"
                                                         if dry_run else ""))
    return "\n".join(lines)

