"""saga replay's pure parts: parsing --to-time / --to-offsets, the plan arithmetic and the
messages that name the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tools.manifests.specs import KafkaSourceSpec
from tools.ops.context import OpsError
from tools.ops.kafka_admin import GroupInfo
from tools.ops.replay import (
    PAUSE_ON_A_CLUSTER,
    PartitionPlan,
    SourcePlan,
    parse_offsets,
    parse_time,
    render,
)

ONE_TOPIC = KafkaSourceSpec(name="dlq", consumer_group="saga-dlq", topics=("dead",), sink="d")
TWO_TOPICS = KafkaSourceSpec(name="inv", consumer_group="g", topics=("a", "b"), sink="i")


def test_times_need_a_zone_and_the_past() -> None:
    assert parse_time("2026-01-01T00:00:00Z") == 1_767_225_600_000
    assert parse_time("2026-01-01T02:00:00+02:00") == 1_767_225_600_000
    with pytest.raises(OpsError, match="no time zone"):
        parse_time("2026-01-01T00:00:00")
    with pytest.raises(OpsError, match="not an ISO 8601 time"):
        parse_time("yesterday")
    with pytest.raises(OpsError, match="in the future"):
        parse_time((datetime.now(UTC) + timedelta(hours=1)).isoformat())


def test_offsets_by_partition_or_by_topic() -> None:
    assert parse_offsets("0:12, 2:7", ONE_TOPIC) == {("dead", 0): 12, ("dead", 2): 7}
    assert parse_offsets("b:1:5", TWO_TOPICS) == {("b", 1): 5}
    with pytest.raises(OpsError, match="name the topic, TOPIC:PARTITION:OFFSET"):
        parse_offsets("0:12", TWO_TOPICS)
    with pytest.raises(OpsError, match="does not read c; it reads a, b"):
        parse_offsets("c:0:1", TWO_TOPICS)
    with pytest.raises(OpsError, match="is not PARTITION:OFFSET"):
        parse_offsets("0=12", ONE_TOPIC)


def test_plan_counts_events_delivered_again_and_skipped() -> None:
    again = PartitionPlan("a", 0, committed=10, current=10, target=4, end=10)
    skipped = PartitionPlan("a", 1, committed=None, current=3, target=5, end=5)
    plan = SourcePlan("inv", "g", GroupInfo("STABLE", 0), [again, skipped])
    assert (again.redelivered, skipped.redelivered, plan.redelivered) == (6, -2, 4)
    assert plan.group.active and not GroupInfo("EMPTY", 0).active
    assert plan.as_dict()["partitions"][0] == {
        "topic": "a", "partition": 0, "committed": 10, "current": 10, "target": 4, "end": 10,
        "redelivered": 6}
    text = render([plan], dry_run=True)
    assert "6 event(s) to deliver again (dry run: nothing changed)" in text
    assert "a/1" in text and "KafkaSource inv (group g, stable)" in text


def test_the_pause_advice_names_the_source() -> None:
    advice = PAUSE_ON_A_CLUSTER.format(name="inventory")
    assert "kubectl scale kafkasource inventory --replicas=0" in advice
    assert "--pause" in advice
