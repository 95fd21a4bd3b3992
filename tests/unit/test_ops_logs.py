"""saga logs (tools/ops/logs.py) on log files written here: merged by @timestamp across the
functions' files, one function's lines with the runtime's about it, one order's, the last
minutes'; follow() in time order within its window, a new file included. The journey
through a real stack is tests/e2e/test_ops_logs.py."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from common.settings import Settings
from tests.helpers import wait_for
from tools import REPO_ROOT
from tools.manifests.loader import load_project_manifests
from tools.ops.context import OpsContext, OpsError
from tools.ops.logs import Line, Query, follow, function_names, no_logs, query, read
from tools.runtime.console import summarise
from tools.runtime.logtail import FollowedFile

ORDER = "6a24a5f7-0618-45ef-b594-4c9321d9442c"
OTHER = "0f0e0d0c-0b0a-4908-8706-050403020100"
T0 = 1_796_000_000.0  # 2026-11-29T23:33:20Z


def line(second: float, service: str, message: str, *, order: str = ORDER,
         action: str = "saga.step.completed") -> str:
    stamp = f"2026-12-06T04:00:{second:06.3f}Z"
    return json.dumps({"@timestamp": stamp, "log.level": "info", "message": message,
                       "service": {"name": service}, "event": {"action": action},
                       "labels": {"order_id": order}}, separators=(",", ":"))


def write(logs: Path, name: str, *lines: str) -> None:
    with (logs / f"{name}.ndjson").open("a") as file:
        file.write("".join(text + "\n" for text in lines))


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Three functions' files and the runtime's, their lines interleaved in time."""
    logs = tmp_path / "logs"
    logs.mkdir()
    write(logs, "api", line(1.0, "api", "placed", action="http.request"),
          line(7.0, "api", "other order", order=OTHER, action="http.request"))
    write(logs, "inventory", line(2.0, "inventory", "reserved"),
          line(5.0, "inventory", "committed"))
    write(logs, "payments", line(3.0, "payments", "failed", action="saga.step.failed"),
          line(4.5, "payments", "captured"))
    write(logs, "knative", line(4.0, "payments", "retry 1/3", action="knative.delivery.retry"),
          line(6.0, "inventory", "dead-lettered", action="knative.delivery.dead_lettered"))
    return logs


def messages(lines: list[Line]) -> list[str]:
    return [line.doc["message"] for line in lines]


def test_every_function_merged_in_time_order(logs: Path) -> None:
    lines, files = read(logs, Query())
    assert messages(lines) == ["placed", "reserved", "failed", "retry 1/3", "captured",
                               "committed", "dead-lettered", "other order"]
    assert lines[0].text(as_json=False) == summarise(lines[0].doc)  # the console's line
    assert json.loads(lines[0].text(as_json=True)) == lines[0].doc  # the ECS line as it is
    assert {path.stem for path in files} == {"api", "inventory", "payments", "knative"}


def test_one_function_with_what_the_runtime_logged_about_it(logs: Path) -> None:
    lines, _ = read(logs, Query(functions=frozenset({"payments"})))
    assert messages(lines) == ["failed", "retry 1/3", "captured"]
    lines, _ = read(logs, Query(functions=frozenset({"knative"})))
    assert messages(lines) == ["retry 1/3", "dead-lettered"]


def test_one_order_and_the_last_seconds(logs: Path) -> None:
    lines, _ = read(logs, Query(order_id=OTHER))
    assert messages(lines) == ["other order"]
    since = lines[0].at - 2.5  # 04:00:04.5
    lines, _ = read(logs, Query(order_id=ORDER, since=since))
    assert messages(lines) == ["captured", "committed", "dead-lettered"]


def test_follow_shows_what_is_written_next_in_time_order(logs: Path) -> None:
    _, files = read(logs, Query(order_id=ORDER))
    clock_now = [T0]
    shown: list[Line] = []
    stop = threading.Event()
    thread = threading.Thread(target=follow, args=(logs, Query(order_id=ORDER), files,
                                                   shown.append, stop),
                              kwargs={"every_s": 0.02, "clock": lambda: clock_now[0]})
    thread.start()
    try:
        write(logs, "shipping", line(8.0, "shipping", "dispatched"))  # a file new to follow
        write(logs, "inventory", line(9.0, "inventory", "committed"),
              line(8.5, "inventory", "other's", order=OTHER))
        wait_for(lambda: len(files) == 5, timeout=10, interval=0.02,
                 message="the new file followed")
        assert shown == []  # by the clock, these lines are too fresh to be shown yet
        clock_now[0] = 2e9  # long after them
        wait_for(lambda: len(shown) == 2, timeout=10, interval=0.02,
                 message="the two lines of the order")
        assert messages(shown) == ["dispatched", "committed"]  # by time, not by file
    finally:
        stop.set()
        thread.join(10)


def test_a_line_still_being_written_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "api.ndjson"
    whole = line(1.0, "api", "whole")
    path.write_text(whole + "\n" + whole[:20])
    lines, files = read(tmp_path, Query())
    assert messages(lines) == ["whole"]
    assert files[path] == FollowedFile(path, len(whole) + 1)


def test_bad_arguments_name_the_fix(tmp_path: Path) -> None:
    ctx = OpsContext(Settings(), tmp_path, None, load_project_manifests(REPO_ROOT))
    assert {"api", "inventory", "knative", "payments"} <= set(function_names(ctx))
    with pytest.raises(OpsError, match=r"no function named 'inventry'; the functions are: "
                       r"api, .*inventory, knative"):
        query(ctx, "inventry", None, None, now=T0)
    with pytest.raises(OpsError, match="too short for an order id prefix"):
        query(ctx, None, "6a24", None, now=T0)  # a prefix is resolved (tools/ops/orders.py)
    with pytest.raises(OpsError, match=r"not a duration: e.g. 30s, 10m, 1h30m"):
        query(ctx, None, None, "ten minutes", now=T0)
    assert query(ctx, "inventory", ORDER.upper(), "10m", now=T0) == Query(
        frozenset({"inventory"}), ORDER, T0 - 600)
    missing = no_logs(ctx)
    assert missing is not None and str(tmp_path / "logs") in missing
    assert "./taskw up" in missing
