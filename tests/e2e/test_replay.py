"""Replay on the running stack: `saga replay --all --to earliest --pause` after a workload
that ends orders every way delivers every event again to every function, and no row of
any business table changes; a replay from a time delivers exactly the events after it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from common.kafka import client_config
from common.settings import Settings
from tests.e2e.conftest import LocalStack
from tests.e2e.test_ops_status import (
    MANIFESTS,
    engine,
    log_docs,
    ops,
    settle,
    wait_quiet,
    wait_terminal,
    workload,
)
from tests.helpers import run_saga, wait_for

pytestmark = pytest.mark.e2e
__all__ = ["ops"]  # the fixture, shared with test_ops_status.py

BUSINESS_SCHEMAS = ("orders", "inventory", "payments", "shipping", "notifications")


def snapshot(stack: LocalStack) -> dict[str, list[str]]:
    """Every row of every table of the business schemas, as sorted text."""
    db = engine(stack)
    try:
        with db.connect() as conn:
            tables = conn.exec_driver_sql(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE "
                "table_type = 'BASE TABLE' AND table_schema = ANY(%(schemas)s)",
                {"schemas": list(BUSINESS_SCHEMAS)}).all()
            return {f"{schema}.{name}": sorted(
                repr(tuple(row)) for row in conn.exec_driver_sql(
                    f'SELECT * FROM "{schema}"."{name}"'))  # noqa: S608 (from the catalog)
                for schema, name in tables}
    finally:
        db.dispose()


def step_lines(stack: LocalStack, function: str, since: datetime) -> list[dict[str, Any]]:
    """What `function` logged per delivered event since `since`."""
    action = ("saga.dlq",) if function == "dlq" else ("saga.step.", "saga.compensation.")
    return [d for d in log_docs(stack, function, since, contains=action)
            if str(d.get("event.action", "")).startswith(action)]


def skipped(lines: list[dict[str, Any]], function: str) -> int:
    """Deliveries that found their event in the inbox (the dlq function: in its own)."""
    if function == "dlq":
        return sum(d.get("labels.duplicate") == "true" for d in lines)
    return sum(d["event.action"] == "saga.step.skipped_duplicate" for d in lines)


def refused(stack: LocalStack, source: str, since: datetime) -> int:
    """Records the source dead-lettered (or dropped) again: poison events other tests put
    on the topics, refused again as the first time."""
    return sum(d.get("labels.kafka_source") == source and d.get("event.action") in (
        "knative.delivery.dead_lettered", "knative.delivery.dropped")
        for d in log_docs(stack, "knative", since, contains=('"knative.delivery.',)))


def test_replaying_everything_changes_no_business_data(ops: LocalStack) -> None:
    endings = workload(ops)
    assert set(endings.values()) == {"COMPLETED", "out_of_stock", "insufficient_funds",
                                     "cancelled_by_customer", "shipping_failed"}
    settle(ops)
    before = snapshot(ops)
    assert len(before["orders.orders"]) >= len(endings)
    started = datetime.now(UTC)

    code, out, err = run_saga("replay", "--all", "--to", "earliest", "--pause", "--json")
    assert code == 0, err
    plans = {p["source"]: p for p in json.loads(out)}
    assert set(plans) == set(MANIFESTS.kafka_sources)
    assert "resumed inventory" in err

    # Every function is delivered every event of its topics again, and finds each in its
    # inbox (the dlq function: in its own), so none is applied twice. The session's other
    # tests decide how many events that is: the deadline grows with it.
    deadline = 60 + 0.05 * sum(int(p["redelivered"]) for p in plans.values())
    for name, plan in plans.items():
        sink, count = MANIFESTS.kafka_sources[name].sink, int(plan["redelivered"])

        # At least: a duplicate record published meanwhile (the outbox relay re-publishing
        # what a killed function had published but not marked) is delivered too.
        def delivered(name: str = name, sink: str = sink, count: int = count) -> bool:
            lines = step_lines(ops, sink, started)
            return skipped(lines, sink) + refused(ops, name, started) >= count

        wait_for(delivered, timeout=deadline, interval=1.0,
                 message=f"{sink} to be delivered its {count} events again")
        # Nothing applied: skipped, refused again (poison), or retried (5xx) first.
        assert {d["event.action"] for d in step_lines(ops, sink, started)} <= {
            "saga.step.skipped_duplicate", "saga.step.failed", "saga.step.retried",
            "saga.dlq"}, sink
    for sink in ("inventory", "order-saga", "payments", "shipping", "notifications"):
        assert step_lines(ops, sink, started), f"{sink} received nothing again"
    wait_quiet(ops)
    after = snapshot(ops)
    changed = [table for table in before if before[table] != after.get(table)]
    assert not changed, f"tables changed by the replay: {changed}"


def records_since(settings: Settings, topics: tuple[str, ...], millis: int) -> int:
    """How many records of `topics` have a timestamp at or after `millis`, counted by
    reading them all (independently of offsets_for_times)."""
    consumer = Consumer(client_config(settings) | {
        "group.id": f"count-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
        "fetch.wait.max.ms": 10})
    try:
        ends, assignment = {}, []
        for topic in topics:
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                           timeout=10)
                if high > low:
                    ends[(topic, partition)] = high
                    assignment.append(TopicPartition(topic, partition, low))
        consumer.assign(assignment)
        count, done = 0, set[tuple[str, int]]()
        while len(done) < len(ends):
            message = consumer.poll(10)
            assert message is not None, "reading the topics stalled"
            if message.error() is None:
                count += message.timestamp()[1] >= millis
                key = (str(message.topic()), int(message.partition() or 0))
                if (message.offset() or 0) + 1 >= ends[key]:
                    done.add(key)
        return count
    finally:
        consumer.close()


def test_replay_from_a_time_delivers_exactly_the_events_after_it(ops: LocalStack) -> None:
    settle(ops)
    since = datetime.now(UTC)
    api = ops.client(f"replay-time-{uuid.uuid4().hex[:6]}")
    api.create_account()
    api.deposit("20.00")
    orders = [api.place_order([("MUG-001", 1)])["id"], api.place_order([("MUG-001", 1)])["id"]]
    wait_terminal(api, orders)
    wait_quiet(ops)
    source = MANIFESTS.kafka_sources["notifications"]
    expected = records_since(ops.settings, source.topics, int(since.timestamp() * 1000))
    assert expected >= len(orders)  # at least each order's order.completed

    stamp = since.isoformat()
    code, out, err = run_saga("replay", "--source", "notifications", "--to-time", stamp,
                              "--dry-run", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["redelivered"] == expected
    started = datetime.now(UTC)
    code, out, err = run_saga("replay", "--source", "notifications", "--to-time", stamp,
                              "--pause")
    assert code == 0, err
    assert f"{expected} event(s) to deliver again" in out
    wait_for(lambda: skipped(step_lines(ops, "notifications", started), "notifications")
             >= expected, timeout=60, interval=0.3,
             message="the events after the time delivered again")
    wait_quiet(ops)
    again = step_lines(ops, "notifications", started)
    assert skipped(again, "notifications") == expected
    assert {d["labels.order_id"] for d in again} == set(orders)  # nothing from before
    assert {d["event.action"] for d in again} <= {"saga.step.skipped_duplicate",
                                                  "saga.step.retried"}


def test_replay_refuses_what_it_cannot_do(ops: LocalStack) -> None:
    code, _, err = run_saga("replay", "--source", "inventory", "--to", "earliest")
    assert code == 2 and "is consuming" in err and "--pause" in err
    assert "kubectl scale kafkasource inventory --replicas=0" in err
    code, _, err = run_saga("replay", "--source", "nope", "--to", "earliest")
    assert code == 2 and "the sources are: dlq, inventory" in err
    code, _, err = run_saga("replay", "--source", "dlq", "--to-time", "2026-01-01T00:00:00")
    assert code == 2 and "no time zone" in err
