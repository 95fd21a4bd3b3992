"""Cron ticks, ping events, offset tracking, console lines and the state file."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka import Message

from tools.manifests.cron import next_tick
from tools.manifests.specs import PingSourceSpec
from tools.runtime.console import Console, LogFile, ecs_event, short_type, summarise
from tools.runtime.eventing.partitions import OffsetTracker, PartitionWorker
from tools.runtime.eventing.ping_source import PING_EVENT_TYPE, ping_headers
from tools.runtime.serving.function_process import FunctionStatus
from tools.runtime.state import RuntimeState, read_state

UTC_ZONE = ZoneInfo("UTC")


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("* * * * *", datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC), datetime(2026, 1, 1, 12, 1)),
    # Exactly on a tick: the next one, never the same one twice.
    ("* * * * *", datetime(2026, 1, 1, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, 12, 2)),
    ("*/5 * * * *", datetime(2026, 1, 1, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, 12, 5)),
    ("0 0 * * *", datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC), datetime(2026, 1, 2)),
    ("@hourly", datetime(2026, 1, 1, 12, 0, 1, tzinfo=UTC), datetime(2026, 1, 1, 13)),
])
def test_next_tick_in_utc(schedule: str, after: datetime, expected: datetime) -> None:
    assert next_tick(schedule, UTC_ZONE, after) == expected.replace(tzinfo=UTC)


def test_next_tick_follows_the_wall_clock_of_its_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    winter = next_tick("0 9 * * *", berlin, datetime(2026, 1, 10, 12, tzinfo=UTC))
    summer = next_tick("0 9 * * *", berlin, datetime(2026, 7, 10, 12, tzinfo=UTC))
    assert winter.astimezone(UTC) == datetime(2026, 1, 11, 8, tzinfo=UTC)
    assert summer.astimezone(UTC) == datetime(2026, 7, 11, 7, tzinfo=UTC)


def test_ping_event_headers() -> None:
    spec = PingSourceSpec(name="tick", sink="fn", data='{"job":"x"}',
                          content_type="application/json", ce_overrides={"origin": "local"})
    headers = ping_headers(spec, datetime(2026, 1, 1, 12, tzinfo=UTC), event_id="i-1")
    assert headers == {
        "ce-specversion": "1.0", "ce-id": "i-1", "ce-type": PING_EVENT_TYPE,
        "ce-source": "/apis/v1/namespaces/default/pingsources/tick",
        "ce-time": "2026-01-01T12:00:00Z", "Content-Type": "application/json",
        "ce-origin": "local"}
    assert spec.body() == b'{"job":"x"}'


def test_offsets_commit_only_up_to_the_first_unfinished_record() -> None:
    tracker = OffsetTracker()
    for offset in range(5, 10):
        tracker.add(offset)
    assert tracker.committable() is None and tracker.low_water() == 5
    tracker.finish(7)
    tracker.finish(6)
    assert tracker.committable() is None  # 5 is still running
    tracker.finish(5)
    assert tracker.committable() == 8 and tracker.low_water() == 8
    tracker.finish(9)
    assert tracker.committable() == 8
    tracker.finish(8)
    assert tracker.committable() == 10 and tracker.low_water() == 10


def test_offset_tracker_is_settled_only_when_nothing_runs_and_all_is_committed() -> None:
    """The dispatcher polls for long only then (tools/runtime/eventing/kafka_source.py
    _poll_wait)."""
    tracker = OffsetTracker()
    assert tracker.settled(None)  # nothing handed out yet
    tracker.add(5)
    assert not tracker.settled(None) and not tracker.settled(5)  # 5 is running
    tracker.finish(5)
    assert not tracker.settled(None)  # finished, not committed yet
    assert not tracker.settled(5)
    assert tracker.settled(6)


def _message(offset: int) -> Message:
    return Message(topic="t", partition=0, offset=offset, value=b"")


def test_an_ordered_worker_handles_records_in_order_one_at_a_time() -> None:
    seen: list[int] = []
    running = threading.Semaphore(1)
    done = threading.Event()

    def handle(message: Message, _interrupted: threading.Event) -> bool:
        assert running.acquire(blocking=False), "two records of a partition in flight"
        seen.append(message.offset() or 0)
        running.release()
        if len(seen) == 50:
            done.set()
        return True

    worker = PartitionWorker("t", 0, handle, concurrency=1)
    worker.submit(_message(n) for n in range(50))
    assert done.wait(10)
    assert seen == list(range(50))
    worker.interrupt()
    assert worker.wait_idle(float("inf"))
    assert worker.tracker.committable() == 50


def test_an_abandoned_record_is_not_committed() -> None:
    gate = threading.Event()

    def handle(message: Message, interrupted: threading.Event) -> bool:
        if message.offset() == 2:
            gate.set()
            interrupted.wait(10)
            return False  # abandoned
        return True

    worker = PartitionWorker("t", 0, handle, concurrency=4)
    worker.submit(_message(n) for n in range(5))
    assert gate.wait(10)
    worker.interrupt()
    assert worker.wait_idle(float("inf"))
    committable = worker.tracker.committable()
    assert committable is not None and committable <= 2


def test_console_summary_of_a_handled_event() -> None:
    doc = {"@timestamp": "2026-01-01T12:00:00.123Z", "log.level": "info",
           "service": {"name": "inventory"},
           "event": {"action": "saga.step.skipped_duplicate", "outcome": "success",
                     "duration": 12_300_000},
           "labels": {"order_id": "3f2a9c1e-aaaa"},
           "cloudevents": {"type": "shop.order.created.v1"}}
    line = summarise(doc)
    assert "inventory" in line and "order.created" in line and "3f2a9c1e " in line
    assert "success (skipped_duplicate)" in line and "12.3 ms" in line
    assert short_type("dev.knative.sources.ping") == "ping"
    assert short_type("dev.knative.kafka.event") == "kafka.event"


def test_log_file_keeps_ndjson_valid(tmp_path: Path) -> None:
    log = LogFile(tmp_path / "logs" / "fn.ndjson", "fn")
    log.write_text("Traceback (most recent call last):")
    log.write_doc(ecs_event("saga.cold_start", service="fn", message="cold", duration_s=0.5))
    log.close()
    text = (tmp_path / "logs" / "fn.ndjson").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["message"].startswith("Traceback") and lines[0]["service"]["name"] == "fn"
    assert lines[1]["event"] == {"action": "saga.cold_start", "kind": "event",
                                 "duration": 500_000_000}


def test_console_json_mode_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    Console(json_mode=True).ecs({"message": "m"})
    assert json.loads(capsys.readouterr().out) == {"message": "m"}


def test_state_file(tmp_path: Path) -> None:
    state = RuntimeState(tmp_path, log_dir=tmp_path / "logs")
    state.function_changed(FunctionStatus("inventory", "scaled_to_zero", 4242, None, 0, 812.5))
    state.sources({"inventory": {"consumer_group": "g", "lag": 3}}, {})
    state.phase("running")
    written = read_state(tmp_path)
    assert written is not None and written["phase"] == "running"
    assert written["functions"]["inventory"]["state"] == "scaled_to_zero"
    assert written["functions"]["inventory"]["last_cold_start_ms"] == 812.5
    assert written["sources"]["inventory"]["consumer_group"] == "g"
