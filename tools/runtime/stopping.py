"""How `saga up` answers SIGINT, SIGTERM and SIGHUP: the first stops the stack in order
(sources, functions, infrastructure); a second one, or the graceful stop outlasting
FORCE_AFTER_S, forces: every process the runtime started is killed at once (PostgreSQL
gets its immediate shutdown, SIGQUIT, which frees its shared memory; SIGKILL if it
lingers), runtime-state.json says "stopped", and the runtime exits.

The signal handler only sets events: the console's and the state's locks may be held by
the very code the signal interrupted, so the printing and the forcing happen on a thread.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import psutil

from tools.runtime.console import Console
from tools.runtime.serving import children
from tools.runtime.state import RuntimeState

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A stack stops in order within ~2-6 s (docs/operations.md); one that takes longer than
# this after the first signal is forced, so every process is gone within 10 s.
FORCE_AFTER_S = 8.0
_POSTGRES_QUIT_S = 1.5  # PostgreSQL's immediate shutdown, before SIGKILL
_SWEEP_S = 5.0  # how long the forced stop looks for processes started meanwhile


class Stopper:
    """The stop signals of one `saga up` (main thread only: Python allows handlers only
    there). `stop` is set by the first signal; done() says the graceful stop finished."""

    def __init__(self, stop: threading.Event, console: Console, state: RuntimeState) -> None:
        self._stop, self._console, self._state = stop, console, state
        self._received: list[int] = []
        self._woken = threading.Event()
        self._finished = threading.Event()
        self._forcing = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle the stop signals while open; the previous handlers come back after."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._thread = threading.Thread(target=self._watch, name="runtime-stopper",
                                        daemon=True)
        self._thread.start()
        previous = {sig: signal.signal(sig, self._handler) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            self.done()
            for sig, old in previous.items():
                signal.signal(sig, old)

    def cause(self) -> str:
        """" on SIGTERM" (the first signal received), or "" (stopped otherwise)."""
        received = list(self._received)
        return f" on {signal.Signals(received[0]).name}" if received else ""

    def done(self) -> None:
        """The graceful stop is over: nothing to force any more."""
        with self._forcing:
            self._finished.set()
        self._woken.set()

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self._received.append(signum)
        self._stop.set()
        self._woken.set()

    def _watch(self) -> None:
        announced = 0
        deadline: float | None = None
        while not self._finished.is_set():
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._woken.wait(timeout)
            self._woken.clear()
            received = list(self._received)
            if self._finished.is_set():
                return
            if len(received) > announced:
                if announced == 0:  # the runtime says it stops (why: cause())
                    deadline = time.monotonic() + FORCE_AFTER_S
                announced = len(received)
                if announced > 1:
                    name = signal.Signals(received[-1]).name
                    self._force(f"{name} received again", 128 + received[-1])
            elif deadline is not None and time.monotonic() >= deadline:
                first = signal.Signals(received[0]).name
                self._force(f"still stopping {FORCE_AFTER_S:.0f} s after {first}",
                            128 + received[0])

    def _force(self, why: str, code: int) -> None:
        with self._forcing:
            if self._finished.is_set():
                return
            self._console.line(f"up: {why}: killing every process of the stack")
            children.refuse_new()
            kill_descendants(psutil.Process())
            self._state.stopped()
            self._console.line("up: stopped (forced)")
            os._exit(code)


def kill_descendants(root: psutil.Process) -> None:
    """Kill every process under `root` now, again and again for _SWEEP_S while new ones
    appear (a start that was under way); a postmaster first gets SIGQUIT."""
    deadline = time.monotonic() + _SWEEP_S
    while True:
        try:
            family = [p for p in root.children(recursive=True) if _alive(p)]
        except psutil.Error:
            return
        if not family or time.monotonic() > deadline:
            return
        postmasters = {p.pid for p in family if _is_postmaster(p, root)}
        for process in family:
            with contextlib.suppress(psutil.Error):
                if process.pid in postmasters:
                    process.send_signal(signal.SIGQUIT)
                elif process.ppid() not in postmasters:  # a backend: its postmaster ends it
                    process.kill()
        for process in wait_gone(family, _POSTGRES_QUIT_S):
            with contextlib.suppress(psutil.Error):
                process.kill()
        wait_gone(family, 2.0)


def _is_postmaster(process: psutil.Process, root: psutil.Process) -> bool:
    try:
        return process.ppid() == root.pid and process.name() == "postgres"
    except psutil.Error:
        return False


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie (one whose parent has yet to collect it is gone enough)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every one of `processes` has ended (a zombie counts as ended: its parent
    may never collect it); those still running at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in processes if _alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)  # polling other processes' ends, bounded by the deadline
