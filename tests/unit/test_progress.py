"""tools/progress.py, the one place that decides how long work shows its progress: a live
bar on a terminal (a real pseudo-terminal here), a plain line every few seconds anywhere
else, nothing with --quiet; a closing line per task in both visible modes; a command's own
output never mixed into the bar."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import pytest

from tests.helpers import wait_for
from tools.progress import Pace, Progress, choose_mode

PLAIN_LINE = re.compile(r"^saga test: placing orders (\d+)/40 orders, [\d.]+ orders/s, "
                        r"0:00:0\d elapsed, ~0:00:\d\d left$")


@contextmanager
def terminal() -> Iterator[tuple[TextIO, int]]:
    """A pseudo-terminal: (its slave end as a text stream, its master's descriptor)."""
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "w", encoding="utf-8")
    try:
        yield stream, master
    finally:
        stream.close()
        os.close(master)


def read_all(master: int) -> str:
    chunks = []
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_the_mode_is_decided_by_quiet_then_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    with terminal() as (tty, _):
        assert choose_mode(tty, quiet=False) == "live"
        assert choose_mode(tty, quiet=True) == "quiet"
        monkeypatch.setenv("TERM", "dumb")
        assert choose_mode(tty, quiet=False) == "plain"
    assert choose_mode(io.StringIO(), quiet=False) == "plain"  # a pipe, a CI log, a file
    assert choose_mode(io.StringIO(), quiet=True) == "quiet"


def test_plain_mode_writes_a_line_every_few_seconds_and_a_closing_one() -> None:
    out = io.StringIO()
    progress = Progress("saga test", mode="plain", stream=out, every_s=0.3)
    placed = 0
    with progress.task("placing orders", total=40, unit="orders", follow=lambda: placed):
        for placed in range(1, 40):  # noqa: B007 (read by the follow)
            time.sleep(0.05)  # the work being shown
        wait_for(lambda: len(out.getvalue().splitlines()) >= 2, timeout=10, interval=0.05,
                 message="two periodic lines")
        placed = 40
    lines = out.getvalue().splitlines()
    periodic, closing = lines[:-1], lines[-1]
    assert len(periodic) >= 2 and all(PLAIN_LINE.match(line) for line in periodic), lines
    counts = [int(PLAIN_LINE.match(line)[1]) for line in periodic]  # type: ignore[index]
    assert counts == sorted(counts) and counts[0] < 40
    assert re.fullmatch(r"saga test: placing orders: 40/40 orders in 0:00:\d\d "
                        r"\([\d.]+ orders/s\)", closing)
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()  # no animation


def test_a_task_of_unknown_size_shows_its_elapsed_time() -> None:
    out = io.StringIO()
    progress = Progress("saga test", mode="plain", stream=out, every_s=0.1)
    with progress.task("starting a stack"):
        wait_for(out.getvalue, timeout=10, interval=0.05, message="a line")
    first, *_, closing = out.getvalue().splitlines()
    assert re.fullmatch(r"saga test: starting a stack 0:00:0\d elapsed", first)
    assert re.fullmatch(r"saga test: starting a stack: done in 0:00:0\d", closing)


def test_quiet_shows_nothing_but_the_command_output_still_goes_out() -> None:
    err, out = io.StringIO(), io.StringIO()
    progress = Progress("saga test", mode="quiet", stream=err, every_s=0.01)
    with progress.task("placing orders", total=2, unit="orders") as task:
        task.advance(2)
        progress.echo("a result", out)
        progress.say("a note")
        assert not any(t.name == "progress" for t in threading.enumerate())  # no ticker
    assert err.getvalue() == ""
    assert out.getvalue() == "a result\n"


def test_on_a_terminal_a_live_bar_then_the_closing_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    with terminal() as (tty, master):
        progress = Progress("saga test", mode=choose_mode(tty, quiet=False), stream=tty)
        assert progress.mode == "live"
        with progress.task("placing orders", total=40, unit="orders") as task:
            for _ in range(40):
                task.advance()
                time.sleep(0.01)  # the work being shown
            progress.echo("a line of the command's own", tty)  # above the bar, not in it
        shown = read_all(master)
    assert "\r" in shown and "\x1b[" in shown  # drawn over and over in place
    assert re.search(r"placing orders .*\d+/40 orders", shown)
    assert "a line of the command's own" in shown
    assert re.search(r"saga test: placing orders: 40/40 orders in 0:00:0\d", shown)
    assert "elapsed" not in shown  # never the plain lines


def test_a_result_stream_that_is_no_terminal_is_left_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`saga load --json > file` on a terminal: the bar on stderr, the JSON only on stdout."""
    monkeypatch.setenv("TERM", "xterm-256color")
    results = io.StringIO()
    with terminal() as (tty, master):
        progress = Progress("saga test", mode="live", stream=tty)
        with progress.task("placing orders", total=1, unit="orders") as task:
            progress.echo('{"orders": 1}', results)
            task.advance()
        read_all(master)
    assert results.getvalue() == '{"orders": 1}\n'


def test_the_rate_is_the_recent_one_and_a_stall_slows_it_down() -> None:
    pace = Pace()
    pace.note(100.0, 0)
    assert pace.per_s() is None  # one sample: no rate yet
    for second in range(1, 11):
        pace.note(100.0 + second, second * 10)  # 10 a second
    assert pace.per_s() == 10.0
    for second in range(11, 21):
        pace.note(100.0 + second, 100)  # stalled for 10 s (a broker cut, say)
    assert pace.per_s() == 5.0  # not the 10/s of the last step, and no time left at it
    for second in range(21, 61):
        pace.note(100.0 + second, 100)
    assert pace.per_s() == 0.0  # nothing for the last half minute
