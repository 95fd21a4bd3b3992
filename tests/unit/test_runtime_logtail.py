"""The console's share of the functions' log files (tools/runtime/logtail.py): every
warning, handled events within the console's rate, nothing twice, lines split across
reads put back together; and all of it, the runtime's own lines too, in time order."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from tools.runtime.console import Console
from tools.runtime.logtail import LogTail, TimeOrder


def ecs_line(action: str, *, level: str = "info", message: str = "m") -> str:
    # The shape common/logging.py writes: flat head, the rest nested.
    return json.dumps({"@timestamp": "2026-12-06T04:00:00.000Z", "log.level": level,
                       "message": message, "event": {"action": action, "outcome": "success"},
                       "service": {"name": "inventory"}}, separators=(",", ":"))


def tail_of(tmp_path: Path, events_per_s: int = 3) -> tuple[Path, LogTail, io.StringIO]:
    out = io.StringIO()
    path = tmp_path / "inventory.ndjson"
    path.write_text(ecs_line("saga.step.completed", message="before") + "\n")
    tail = LogTail(Console(out, json_mode=True, events_per_s=events_per_s), interval_s=3600)
    tail.watch(path)
    return path, tail, out


def shown(out: io.StringIO) -> list[str]:
    return [json.loads(line)["message"] for line in out.getvalue().splitlines()
            if line.startswith("{")]


def test_warnings_always_handled_events_within_the_rate(tmp_path: Path) -> None:
    path, tail, out = tail_of(tmp_path, events_per_s=3)
    lines = [ecs_line("saga.step.completed", message=f"event {n}") for n in range(10)]
    lines.insert(5, ecs_line("saga.step.retried", level="warning", message="a warning"))
    lines.append(ecs_line("http.request", message="a request line"))  # not a saga event
    with path.open("a") as file:
        file.write("\n".join(lines) + "\n")
    tail.poll()
    assert shown(out) == ["a warning", "event 0", "event 1", "event 2"]  # not "before"
    tail.close()


def test_a_line_split_across_reads_is_shown_once_whole(tmp_path: Path) -> None:
    path, tail, out = tail_of(tmp_path)
    line = ecs_line("saga.step.failed", level="error", message="split")
    with path.open("a") as file:
        file.write(line[:40])
    tail.poll()
    assert shown(out) == []
    with path.open("a") as file:
        file.write(line[40:] + "\n")
    tail.poll()
    assert shown(out) == ["split"]
    tail.close()


def test_the_runtime_own_cold_start_lines_are_not_shown_again(tmp_path: Path) -> None:
    path, tail, out = tail_of(tmp_path)
    with path.open("a") as file:
        file.write(ecs_line("saga.cold_start", message="cold start in 300 ms") + "\n")
        file.write("not json, but a line\n")
    tail.poll()
    assert shown(out) == []
    tail.close()


# --- time order -----------------------------------------------------------------------------

def at(second: float, action: str, message: str, *, level: str = "info",
       service: str = "inventory") -> str:
    """An ECS line logged `second` seconds after 04:00:00 (UTC) on 2026-12-06."""
    return json.dumps({"@timestamp": f"2026-12-06T04:00:{second:06.3f}Z", "log.level": level,
                       "message": message, "event": {"action": action},
                       "service": {"name": service}}, separators=(",", ":"))


T0 = datetime(2026, 12, 6, 4, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def two_files(tmp_path: Path, clock: Clock) -> tuple[Path, Path, LogTail, io.StringIO]:
    out = io.StringIO()
    tail = LogTail(Console(out, json_mode=True, events_per_s=100), interval_s=3600,
                   hold_s=0.5, clock=clock)
    first, second = tmp_path / "inventory.ndjson", tmp_path / "payments.ndjson"
    for path in (first, second):
        path.touch()
        tail.watch(path)
    return first, second, tail, out


def append(path: Path, *lines: str) -> None:
    with path.open("a") as file:
        file.write("".join(line + "\n" for line in lines))


def test_lines_of_several_files_are_shown_in_time_order(tmp_path: Path) -> None:
    clock = Clock(T0 + 10)
    inventory, payments, tail, out = two_files(tmp_path, clock)
    append(inventory, at(1.0, "saga.step.completed", "1"), at(3.0, "saga.step.completed", "3"))
    append(payments, at(2.0, "saga.step.completed", "2"),
           at(2.5, "saga.step.failed", "2.5", level="error"),
           at(4.0, "saga.step.completed", "4"))
    tail.poll()
    assert shown(out) == ["1", "2", "2.5", "3", "4"]  # not a file's lines, then the other's
    tail.close()


def test_a_line_that_reaches_its_file_late_still_comes_before_later_ones(
        tmp_path: Path) -> None:
    clock = Clock(T0 + 2.2)
    inventory, payments, tail, out = two_files(tmp_path, clock)
    append(inventory, at(1.0, "saga.step.completed", "1"), at(2.0, "saga.step.completed", "2"))
    tail.poll()
    assert shown(out) == ["1"]  # "2" is held: something older may still be on its way
    append(payments, at(1.9, "saga.step.completed", "1.9"))  # written after the first read
    clock.now = T0 + 2.6
    tail.poll()
    assert shown(out) == ["1", "1.9", "2"]
    tail.close()


def test_the_runtime_own_lines_take_their_place_among_the_functions(tmp_path: Path) -> None:
    clock = Clock(T0 + 10)
    inventory, _, tail, out = two_files(tmp_path, clock)
    console_of_the_runtime = tail._console  # what the supervisor and the sources write to
    append(inventory, at(1.0, "saga.step.failed", "failed", level="error"),
           at(3.0, "saga.step.completed", "completed"))
    console_of_the_runtime.ecs(json.loads(at(2.0, "knative.delivery.retry", "retry",
                                             service="knative")))
    tail.poll()
    assert shown(out) == ["failed", "retry", "completed"]
    tail.close()
    console_of_the_runtime.ecs(json.loads(at(4.0, "knative.delivery.retry", "after")))
    assert shown(out)[-1] == "after"  # a closed tail routes nothing: shown at once


def test_time_order_holds_items_for_their_window() -> None:
    order: TimeOrder[str] = TimeOrder(hold_s=1.0)
    order.add(5.0, "b")
    order.add(4.0, "a")
    order.add(5.0, "c")
    assert order.due(4.9) == []
    assert order.due(5.5) == ["a"]
    assert order.due(6.0) == ["b", "c"]  # equal times keep the order they came in
    order.add(7.0, "d")
    assert order.drain() == ["d"]


def test_within_the_rate_the_earliest_lines_of_all_files_are_shown(tmp_path: Path) -> None:
    out = io.StringIO()
    tail = LogTail(Console(out, json_mode=True, events_per_s=3), interval_s=3600,
                   clock=Clock(T0 + 10))
    first, second = tmp_path / "inventory.ndjson", tmp_path / "payments.ndjson"
    for path in (first, second):
        path.touch()
        tail.watch(path)
    append(first, *(at(n, "saga.step.completed", str(n)) for n in (1.0, 4.0, 5.0, 6.0)))
    append(second, *(at(n, "saga.step.completed", str(n)) for n in (2.0, 3.0, 7.0)))
    tail.poll()
    assert shown(out) == ["1.0", "2.0", "3.0"]  # not the first file's share only
    tail.close()
