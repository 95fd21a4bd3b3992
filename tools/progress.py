"""How long work shows its progress, decided in this one place, always on stderr: on a
terminal a live bar (rich) with counts, rate and time left; elsewhere (a CI log, a pipe) a
plain line every few seconds; with `--quiet` nothing. Each finished task says once what it
did.

    progress = Progress.on_stderr("saga load", quiet=args.quiet)
    with progress.task("placing orders", total=1000, unit="orders") as placing:
        placing.advance()                     # thread-safe"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:  # rich is imported when a Progress is made: `saga --help` stays fast
    from rich.progress import Progress as RichProgress
    from rich.progress import Task as RichTask
    from rich.progress import TaskID

Mode = Literal["live", "plain", "quiet"]
PLAIN_EVERY_S = 5.0  # a plain line per task this often
SAMPLE_EVERY_S = 0.25  # followed counts are read this often (and the live bar redrawn)
PACE_WINDOW_S = 30.0  # the rate is that of the last half minute


def choose_mode(stream: TextIO, *, quiet: bool) -> Mode:
    """quiet wins; a terminal gets the live bar; anything else plain lines."""
    if quiet:
        return "quiet"
    return "live" if _is_terminal(stream) and os.environ.get("TERM") != "dumb" else "plain"


def _number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def _duration(seconds: float | None) -> str:
    return "-:--:--" if seconds is None else str(timedelta(seconds=round(seconds)))


def counts(task: RichTask) -> str:
    """412/1,000 orders (or 12.3 MB with no total)."""
    unit, decimals = task.fields.get("unit", ""), task.fields.get("decimals", 0)
    if task.total is None and not task.completed:
        return ""  # a task of unknown size that counts nothing: its elapsed time says it all
    done = _number(task.completed, decimals)
    text = done if task.total is None else f"{done}/{_number(task.total, decimals)}"
    return f"{text} {unit}".rstrip()


class Pace:
    """How fast a task goes lately: its count sampled a few times a second over the last
    PACE_WINDOW_S, up to now (rich's own estimate keeps the speed of the last step when
    progress stalls, and its time left with it). Thread-safe."""

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._lock = threading.Lock()

    def note(self, at: float, completed: float) -> None:
        with self._lock:
            self._samples.append((at, completed))
            while self._samples[0][0] < at - PACE_WINDOW_S:
                self._samples.popleft()

    def per_s(self) -> float | None:
        with self._lock:
            if len(self._samples) < 2:
                return None
            (first_at, first), (last_at, last) = self._samples[0], self._samples[-1]
        return (last - first) / (last_at - first_at) if last_at - first_at >= 1.0 else None


def speed(task: RichTask) -> float | None:
    """Per second: lately (Pace) while it runs, else on average since it started."""
    pace = task.fields.get("pace")
    found = pace.per_s() if isinstance(pace, Pace) and task.stop_time is None else None
    if found is None and task.completed and task.elapsed:
        found = task.completed / task.elapsed
    return found


def left(task: RichTask) -> float | None:
    """Seconds still to go at the current speed (None: unknown)."""
    per_s = speed(task)
    if task.total is None or not per_s:
        return None
    return max(task.total - task.completed, 0) / per_s


def rate(task: RichTask) -> str:
    """52.1 orders/s (empty until something was done)."""
    per_s = speed(task)
    if per_s is None or not counts(task):  # nothing counted, nor anything to count
        return ""
    unit = task.fields.get("unit", "")
    return f"{per_s:,.1f} {unit}/s".replace(" /s", "/s")


def _rich_bars(stream: TextIO, mode: Mode) -> RichProgress:
    """rich keeps the counts, rates and times in every mode; it draws only when live. Its
    console writes to `stream`; stdout is redirected above the bar only when it is the
    terminal too (a redirected stdout is never written to behind its back)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class Column(ProgressColumn):
        def __init__(self, text: Callable[[RichTask], str]) -> None:
            super().__init__()
            self._text = text

        def render(self, task: RichTask) -> Text:
            return Text(self._text(task))

    return RichProgress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), Column(counts),
        Column(rate), TimeElapsedColumn(),
        Column(lambda task: "" if (s := left(task)) is None else f"{_duration(s)} left"),
        TextColumn("{task.fields[detail]}"),
        console=Console(file=stream), transient=True, disable=mode != "live",
        auto_refresh=False, redirect_stdout=mode == "live" and _is_terminal(sys.stdout))


class Task:
    """One piece of long work: what has been done of how much. Thread-safe."""

    def __init__(self, owner: Progress, task_id: TaskID, follow: Callable[[], float] | None,
                 pace: Pace) -> None:
        self._owner, self.id, self._follow, self._pace = owner, task_id, follow, pace

    def advance(self, amount: float = 1) -> None:
        self._owner.bars.advance(self.id, amount)

    def update(self, *, completed: float | None = None, total: float | None = None,
               detail: str | None = None) -> None:
        fields: dict[str, Any] = {} if detail is None else {"detail": detail}
        if total is not None:
            fields["total"] = total
        self._owner.bars.update(self.id, completed=completed, **fields)

    def sample(self) -> None:
        """Read a followed count, and note the pace (the ticker does, a few times a
        second)."""
        if self._follow is not None:
            self.update(completed=self._follow())
        self._pace.note(time.monotonic(), self._owner.record(self.id).completed)


class Progress:
    """A command's progress reporter; inert (no thread, no output) while no task is open."""

    def __init__(self, label: str, *, mode: Mode, stream: TextIO,
                 every_s: float = PLAIN_EVERY_S) -> None:
        self.label, self.mode, self._stream, self._every = label, mode, stream, every_s
        self.bars = _rich_bars(stream, mode)
        self._lock = threading.Lock()  # the open tasks
        self._life = threading.Lock()  # starting and stopping the ticker (and the live bar)
        self._open: dict[TaskID, Task] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @classmethod
    def on_stderr(cls, label: str, *, quiet: bool = False) -> Progress:
        return cls(label, mode=choose_mode(sys.stderr, quiet=quiet), stream=sys.stderr)

    @classmethod
    def silent(cls) -> Progress:
        """For callers that show no progress (library defaults, tests)."""
        return cls("", mode="quiet", stream=sys.stderr)

    @contextmanager
    def task(self, description: str, *, total: float | None = None, unit: str = "",
             decimals: int = 0, follow: Callable[[], float] | None = None) -> Iterator[Task]:
        """Show `description` while the block runs (total None: no bar, elapsed time only),
        then one line saying what was done."""
        pace = Pace()
        task_id = self.bars.add_task(description, total=total, unit=unit, decimals=decimals,
                                     detail="", pace=pace)
        task = Task(self, task_id, follow, pace)
        with self._life:
            with self._lock:
                self._open[task_id] = task
            if self._ticker is None:
                self._start()
        try:
            yield task
        finally:
            task.sample()
            self.bars.stop_task(task_id)
            with self._lock:
                del self._open[task_id]
            self.say(self.summary(self.record(task_id)))
            self.bars.remove_task(task_id)
            self._halt_if_idle()

    def say(self, text: str) -> None:
        """A line about the work (not a result): above the live bar, or plain; never quiet."""
        if self.mode == "live":
            self.bars.console.print(text, markup=False, highlight=False, emoji=False,
                                    soft_wrap=True)
        elif self.mode == "plain":
            self._write(self._stream, text)

    def echo(self, text: str, stream: TextIO) -> None:
        """A line of the command's own output (to `stream`, stdout say), kept clear of a
        live bar that shares the terminal with it."""
        if self.mode == "live" and self._ticker is not None and _is_terminal(stream):
            self.bars.console.print(text, markup=False, highlight=False, emoji=False,
                                    soft_wrap=True)
        else:
            self._write(stream, text)

    def tick(self) -> None:
        """Read followed counts, and draw: the live bar, or (plain) one line per open task.
        The ticker calls this; tests may too."""
        with self._lock:
            tasks = list(self._open.values())
        for task in tasks:
            task.sample()
        if self.mode == "live":
            self.bars.refresh()

    def plain_lines(self) -> list[str]:
        with self._lock:
            ids = list(self._open)
        by_id = {t.id: t for t in self.bars.tasks}
        return [self.line(by_id[i]) for i in ids if i in by_id]

    def line(self, task: RichTask) -> str:
        """saga load: placing orders 412/1,000 orders, 52.1 orders/s, 0:00:08 elapsed,
        ~0:00:11 left; detail"""
        parts = [p for p in (counts(task), rate(task), f"{_duration(task.elapsed)} elapsed")
                 if p]
        remaining = left(task)
        if remaining is not None:
            parts.append(f"~{_duration(remaining)} left")
        detail = task.fields.get("detail")
        return (f"{self.label}: {task.description} " + ", ".join(parts)
                + (f"; {detail}" if detail else ""))

    def summary(self, task: RichTask) -> str:
        """saga load: placing orders: 1,000/1,000 orders in 0:00:19 (52.6 orders/s)"""
        per_s = rate(task)
        what = counts(task) or "done"
        detail = task.fields.get("detail")
        return (f"{self.label}: {task.description}: {what} in {_duration(task.elapsed)}"
                + (f" ({per_s})" if per_s else "")
                + (f"; {detail}" if detail else ""))

    def record(self, task_id: TaskID) -> RichTask:
        """rich's record of a task: its counts and times."""
        return next(t for t in self.bars.tasks if t.id == task_id)

    # --- the ticker: a thread while any task is open ---------------------------------------

    def _start(self) -> None:
        if self.mode == "quiet":
            return
        self._stop.clear()
        self.bars.start()
        self._ticker = threading.Thread(target=self._run, name="progress", daemon=True)
        self._ticker.start()

    def _halt_if_idle(self) -> None:
        with self._life:
            with self._lock:
                if self._open or self._ticker is None:
                    return
            ticker, self._ticker = self._ticker, None
            self._stop.set()
            ticker.join(5)
            self.bars.stop()

    def _run(self) -> None:
        next_line = time.monotonic() + self._every
        while not self._stop.wait(SAMPLE_EVERY_S):
            try:
                self.tick()
                if self.mode == "plain" and time.monotonic() >= next_line:
                    next_line += self._every
                    for text in self.plain_lines():
                        self._write(self._stream, text)
            except (OSError, ValueError):  # the stream was closed under us: stop showing
                return

    def _write(self, stream: TextIO, text: str) -> None:
        stream.write(text + "\n")
        stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    """--quiet, the same on every command that shows progress."""
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="show no progress (on stderr: a live bar on a terminal, "
                        "else a line every few seconds)")
