"""Replay stays safe after the retention sweep, on each broker, with a stack of the test's own
(short retention windows; local_stack lives for the session):

- Apache Kafka: the topics' retention is shortened until the broker really has deleted the
  first orders' records (low watermark = end, waited for), then set back; later orders keep
  theirs. The sweep (the retention function, pinged) deletes the first orders' inbox rows
  and keeps the later ones', and `saga replay --all --to earliest` changes no row.
- Tansu (no retention enforced; memory only): the first orders' inbox rows go only once the
  broker is a new one (a restart), except those of an order that was unfinished then (its
  events were re-published into the new broker); a replay re-delivers those and changes no
  row either.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

# Where confluent_kafka.admin re-exports them from (mypy sees no re-export there).
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType

from common.events import catalogue as c
from common.kafka import client_config
from common.settings import Settings
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.conftest import LocalStack
from tests.e2e.stack_support import saga_up
from tests.e2e.test_ops_status import MANIFESTS, rows, wait_quiet, wait_terminal, workload
from tests.e2e.test_replay import refused, skipped, snapshot, step_lines
from tests.helpers import run_saga, wait_for
from tools.infra.apache_kafka import KafkaServer
from tools.infra.ports import free_port
from tools.log_contract import flatten
from tools.ops.context import runtime_broker_kind
from tools.settings import LocalSettings

pytestmark = pytest.mark.e2e

TOPICS = tuple(c.topics())  # the event topics and the dead letters' one
PING = "dev.knative.sources.ping"


@contextmanager
def own_stack(env: dict[str, str], state_dir: Path, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[LocalStack]:
    """`saga up` on `env` until the block ends, as a LocalStack the operator helpers take,
    with this process's environment naming its database, broker and state dir."""
    log = state_dir.parent / "saga-up.log"
    with saga_up(env, state_dir, log) as state:
        settings = LocalSettings(DATABASE_URL=env["DATABASE_URL"], jwt_secret=TEST_JWT_SECRET,
                                 KAFKA_BOOTSTRAP_SERVERS=state["kafka_bootstrap"],
                                 kafka_broker_kind=runtime_broker_kind(state),
                                 state_dir=state_dir)
        for name, value in (("DATABASE_URL", env["DATABASE_URL"]),
                            ("KAFKA_BOOTSTRAP_SERVERS", state["kafka_bootstrap"]),
                            ("SAGA_KAFKA_BROKER_KIND", state["kafka_broker_kind"]),
                            ("SAGA_STATE_DIR", str(state_dir)),
                            *[(k, v) for k, v in env.items() if k.startswith("SAGA_RETENTION")]):
            monkeypatch.setenv(name, value)
        yield LocalStack(state["api_url"], str(state["console_url"]), state_dir,
                         state_dir / "logs", settings, process=cast(Any, None), output=log)


def stack_env(database_url: str, state_dir: Path, window_s: int, **more: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SAGA_KAFKA_BROKER_KIND")} | {
        "DATABASE_URL": database_url, "SAGA_STATE_DIR": str(state_dir),
        "SAGA_API_PORT": str(free_port()), "SAGA_JWT_SECRET": TEST_JWT_SECRET,
        "SAGA_PROFILE": "local",
        # The retention function stays up to be pinged; no order times out meanwhile.
        "SAGA_IDLE_SCALE_TO_ZERO_S": "3600", "SAGA_PAYMENT_WINDOW_S": "3600",
        "SAGA_RETENTION_INBOX_S": str(window_s),
        "SAGA_RETENTION_DEAD_LETTER_INBOX_S": str(window_s),
        "SAGA_RETENTION_OUTBOX_S": "1", "SAGA_RETENTION_IDEMPOTENCY_S": "1"} | more


def sweep(stack: LocalStack) -> dict[str, int]:
    """One tick of the retention PingSource, as the runtime's emulation POSTs it to the
    function; the counts of the function's log line."""
    def up() -> int | None:
        function = stack.state()["functions"]["retention"]
        return int(function["port"]) if function["state"] == "running" else None

    port = wait_for(up, timeout=30, message="the retention function to run")
    tick = str(uuid.uuid4())
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=b'{"job": "retention"}', method="POST",
        headers={"ce-specversion": "1.0", "ce-id": tick, "ce-type": PING,
                 "ce-source": "/apis/v1/namespaces/test/pingsources/retention-ping",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310 (our port)
        assert answer.status == 200

    def logged() -> dict[str, Any] | None:
        path = stack.logs_dir / "retention.ndjson"
        for line in path.read_text().splitlines() if path.exists() else []:
            doc = flatten(json.loads(line)) if line.startswith("{") else {}
            if doc.get("cloudevents.id") == tick:
                return doc
        return None

    doc = wait_for(logged, timeout=10, message="the sweep's log line")
    assert doc["event.action"] == "saga.retention.ran", doc
    return {key[len("labels."):]: int(value) for key, value in doc.items()
            if key.startswith("labels.")}


def replay_changes_nothing(stack: LocalStack) -> dict[str, list[dict[str, Any]]]:
    """`saga replay --all --to earliest`: every event still in a topic is delivered again
    and skipped by its inbox; no business row changes. The lines of each function."""
    wait_quiet(stack)
    before = snapshot(stack)
    started = datetime.now(UTC)
    code, out, err = run_saga("replay", "--all", "--to", "earliest", "--pause", "--json")
    assert code == 0, err
    lines: dict[str, list[dict[str, Any]]] = {}
    for name, plan in {p["source"]: p for p in json.loads(out)}.items():
        sink, count = MANIFESTS.kafka_sources[name].sink, int(plan["redelivered"])

        def delivered(name: str = name, sink: str = sink, count: int = count) -> bool:
            return skipped(step_lines(stack, sink, started), sink) + refused(
                stack, name, started) >= count

        wait_for(delivered, timeout=60 + 0.05 * count, interval=0.5,
                 message=f"{sink} to be delivered its {count} events again")
        lines[sink] = step_lines(stack, sink, started)
        # Nothing applied again: every delivery found its inbox row (or was refused again).
        assert {d["event.action"] for d in lines[sink]} <= {
            "saga.step.skipped_duplicate", "saga.step.failed", "saga.step.retried",
            "saga.dlq"}, sink
    wait_quiet(stack)
    after = snapshot(stack)
    assert [table for table in before if before[table] != after.get(table)] == []
    return lines


def event_ids(stack: LocalStack, order_ids: list[str]) -> set[str]:
    """The events emitted for these orders, from the outbox."""
    return {str(r[0]) for r in rows(
        stack, "SELECT id FROM messaging.outbox WHERE partition_key = ANY(:ids)", ids=order_ids)}


def inbox_rows(stack: LocalStack, ids: set[str]) -> int:
    return int(rows(stack, "SELECT count(*) FROM messaging.inbox WHERE event_id = ANY(:ids)",
                    ids=sorted(ids))[0][0])


@pytest.mark.tansu_only
def test_on_tansu_a_replay_after_the_sweep_changes_nothing(
    fresh_database: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows of a second: what keeps a row is the broker's life, the rule Tansu needs.
    env = stack_env(fresh_database("retention-tansu"), tmp_path / "state", 1)
    with own_stack(env, tmp_path / "state", monkeypatch) as stack:
        first = workload(stack)
        api = stack.client(f"unfinished-{uuid.uuid4().hex[:6]}")
        api.create_account()
        api.deposit("20.00")
        unfinished = api.place_order([("MUG-001", 1)], payment_mode="confirm")["id"]
        wait_for(lambda: api.order(unfinished)["status"] == "AWAITING_PAYMENT", timeout=30,
                 message="the confirm-mode order to wait for its payment")
        wait_quiet(stack)
        first_events = event_ids(stack, list(first))
        held = inbox_rows(stack, first_events)
        # Nothing may go from the inbox while this broker runs: it holds every record.
        assert sweep(stack)["inbox"] == 0 and inbox_rows(stack, first_events) == held > 0
    with own_stack(env, tmp_path / "state", monkeypatch) as stack:  # a new, empty Tansu
        assert stack.state()["broker_started_at"] is not None
        wait_quiet(stack)
        republished = event_ids(stack, [unfinished])
        api.pay(unfinished)
        wait_terminal(api, [unfinished])
        later = workload(stack)
        wait_quiet(stack)
        later_events = event_ids(stack, list(later))
        kept = inbox_rows(stack, republished), inbox_rows(stack, later_events)
        assert all(kept)

        # The operator's look first (the same rule, counted): the first orders' rows. (The
        # stack's own PingSource may have ticked since: the same code, the same end.)
        code, out, err = run_saga("retention", "--dry-run", "--json")
        assert code == 0, err
        assert json.loads(out)["inbox"] == inbox_rows(stack, first_events)
        assert sweep(stack)["inbox_swept"] == 1
        assert inbox_rows(stack, first_events) == 0
        # The unfinished order's events were re-published into this broker: kept, as are
        # the later orders' (received while it runs).
        assert (inbox_rows(stack, republished), inbox_rows(stack, later_events)) == kept

        lines = replay_changes_nothing(stack)
        replayed = {d.get("labels.order_id") for sink in lines.values() for d in sink}
        assert unfinished in replayed  # its old events were delivered again, and skipped
        assert not replayed & set(first)


@pytest.mark.kafka_only
def test_on_kafka_a_replay_after_the_sweep_changes_nothing(
    fresh_database: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    retention_ms, segment_ms, margin_s = 3000, 1000, 26
    window_s = (retention_ms + segment_ms) // 1000 + margin_s  # the rule, at test scale
    broker = KafkaServer(tmp_path / "kafka", config={"log.retention.check.interval.ms": "1000"})
    with broker:
        env = stack_env(fresh_database("retention-kafka"), tmp_path / "state", window_s,
                        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
                        SAGA_KAFKA_BROKER_KIND="kafka")
        with own_stack(env, tmp_path / "state", monkeypatch) as stack:
            first = workload(stack)
            wait_quiet(stack)
            first_events = event_ids(stack, list(first))
            assert inbox_rows(stack, first_events) > 0  # young: nothing may delete them yet
            # The broker deletes the first orders' records: wait until it has, every one.
            configure_topics(stack.settings, retention_ms, segment_ms)
            wait_for(lambda: all_deleted(stack.settings), timeout=90, interval=0.5,
                     message="Kafka to delete the first orders' records")
            configure_topics(stack.settings, 7 * 24 * 3600 * 1000, 24 * 3600 * 1000)
            wait_for(lambda: rows(stack, "SELECT max(received_at) < now() - :w * interval "
                                  "'1 second' FROM messaging.inbox", w=window_s)[0][0],
                     timeout=window_s + 30, interval=0.5,
                     message="the first orders' inbox rows to pass the window")
            later = workload(stack)
            wait_quiet(stack)
            later_events = event_ids(stack, list(later))
            kept_before = inbox_rows(stack, later_events)

            assert sweep(stack)["inbox_swept"] == 1  # (or the stack's own tick did: the same)
            assert inbox_rows(stack, first_events) == 0
            assert inbox_rows(stack, later_events) == kept_before > 0

            lines = replay_changes_nothing(stack)
            replayed = {d.get("labels.order_id") for sink in lines.values() for d in sink}
            assert set(later) <= replayed and not replayed & set(first)


def configure_topics(settings: Settings, retention_ms: int, segment_ms: int) -> None:
    admin = AdminClient(client_config(settings))
    resources = [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", str(retention_ms),
                    incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.ms", str(segment_ms), incremental_operation=AlterConfigOpType.SET),
    ]) for topic in TOPICS]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(30)


def all_deleted(settings: Settings) -> bool:
    """Every partition of every topic is empty: its low watermark reached its end."""
    consumer = Consumer(client_config(settings) | {"group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        for topic in TOPICS:
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                           timeout=10)
                if low < high:
                    return False
        return True
    finally:
        consumer.close()
