"""`saga replay`: move a KafkaSource's consumer group back (or forward) so the source
delivers events again, against any Kafka. plan() reads, per partition, where the group is
(committed, or its initialOffset), where it should be (earliest, the first record at or
after a time, or given offsets) and the end; execute() moves it. A group with members is
refused unless the local runtime pauses the source (it leaves the group and joins again
from the new offsets); on a cluster the operator scales the consumers to zero first
(PAUSE_ON_A_CLUSTER). Every step is idempotent, so events delivered again change nothing;
wait_redelivered() follows each group until it has committed what it was sent back to."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from tools.manifests.specs import KafkaSourceSpec
from tools.ops.context import OpsContext, OpsError
from tools.ops.kafka_admin import TP, GroupInfo, KafkaOps
from tools.progress import Progress

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


@dataclass(frozen=True)
class Moved:
    """A source whose group was moved: the end of each of its partitions at that moment
    (what it is to deliver again runs up to there) and whether replay paused it."""

    source: str
    consumer_group: str
    ends: dict[TP, int]
    paused: bool

    def behind(self, committed: dict[TP, int]) -> int:
        return sum(max(end - committed.get(tp, end), 0) for tp, end in self.ends.items())


def execute(ctx: OpsContext, kafka: KafkaOps, plans: Sequence[SourcePlan], *, pause: bool,
            report: Callable[[str], None]) -> list[Moved]:
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
    moved: list[Moved] = []
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
            marks = kafka.watermarks([(p.topic, p.partition) for p in item.partitions])
            moved.append(Moved(item.source, item.consumer_group,
                               {tp: high for tp, (_, high) in marks.items()},
                               paused=control is not None))
            report(f"{item.source}: group {item.consumer_group} moved on "
                   f"{len(changes)} partition(s); {max(item.redelivered, 0)} event(s) will "
                   "be delivered again" + (f", {-item.redelivered} skipped"
                                           if item.redelivered < 0 else ""))
    finally:
        for name in paused:
            assert control is not None
            control.resume(name)
            report(f"resumed {name}")
    return moved


@dataclass(frozen=True)
class Waited:
    delivered: dict[str, int]  # source -> events it committed again while we waited
    behind: dict[str, int]  # source -> events still to deliver when the wait ended
    idle: list[str]  # sources with no consumer: not waited for
    seconds: float

    @property
    def done(self) -> bool:
        return not any(self.behind.values())


def wait_redelivered(kafka: KafkaOps, moved: Sequence[Moved], *, progress: Progress,
                     timeout_s: float, interval_s: float = 0.5) -> Waited:
    """Follow each moved group's committed offsets until it has delivered again everything
    it was sent back to (its lag up to the ends at the move is 0), for `timeout_s` at
    most. A group nobody consumes (not paused by replay and without members: a cluster's
    KafkaSource scaled to zero) is not waited for."""
    started = time.monotonic()
    followed = [m for m in moved if m.paused or kafka.group(m.consumer_group).active]
    idle = [m.source for m in moved if m not in followed]
    first = {m.source: m.behind(kafka.committed(m.consumer_group)) for m in followed}
    behind = dict(first)
    if any(first.values()):
        names = ", ".join(m.source for m in followed)
        with progress.task(f"events delivered again ({names})", total=sum(first.values()),
                           unit="events") as task:
            while any(behind.values()) and time.monotonic() - started < timeout_s:
                time.sleep(interval_s)  # polling the broker, bounded by timeout_s
                for m in followed:
                    if behind[m.source]:
                        behind[m.source] = m.behind(kafka.committed(m.consumer_group))
                late = ", ".join(f"{name} {n}" for name, n in behind.items() if n)
                task.update(completed=sum(first.values()) - sum(behind.values()),
                            detail=f"behind: {late}" if late else "")
    return Waited({name: first[name] - behind[name] for name in first}, behind, idle,
                  time.monotonic() - started)


def render_wait(waited: Waited, moved: Sequence[Moved]) -> list[str]:
    """What the wait waited for, and how it ended."""
    groups = {m.source: m.consumer_group for m in moved}
    lines = [f"{name}: no consumer in group {groups[name]}; its events are delivered again "
             "once its KafkaSource consumes (`saga status` shows the lag); not waited for"
             for name in waited.idle]
    for name, count in waited.delivered.items():
        group, left = groups[name], waited.behind[name]
        lines.append(
            f"{name}: group {group} committed {count} event(s) again in {waited.seconds:.1f} s"
            + (f"; {left} still to deliver (the source goes on: `saga status` shows its lag)"
               if left else ": its lag up to the end of each partition at the move is 0"))
    return lines


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

