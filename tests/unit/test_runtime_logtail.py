"""The console's share of the functions' log files (tools/runtime/logtail.py): every
warning, handled events within the console's rate, nothing twice, lines split across
reads put back together."""

from __future__ import annotations

import io
import json
from pathlib import Path

from tools.runtime.console import Console
from tools.runtime.logtail import LogTail


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
