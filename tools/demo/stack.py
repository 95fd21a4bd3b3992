"""Where the demo runs: a `saga up` of its own (the default) or the one `./taskw up` runs.

Its own stack is the default because it is deterministic: a fresh database (so the
catalogue's stock is all there), and a short payment window (SAGA_PAYMENT_WINDOW_S), so the
payment_timeout ending takes seconds instead of the default five minutes. It lives in its
own state dir (<state dir>/demo) on free ports, so it runs beside a `./taskw up` without
touching it, and is stopped with Ctrl-C (SIGINT), as a person would, when the demo ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tools import REPO_ROOT
from tools.infra.ports import free_port
from tools.progress import Progress
from tools.runtime.state import read_state

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
ATTACH_TIMEOUT_S = 60.0


class StackError(Exception):
    """No stack to run the demo on; the message says what to do."""


@dataclass(frozen=True)
class Stack:
    api_url: str
    state_dir: Path
    own: bool  # started by the demo (and stopped by it)
    payment_window_s: int | None  # known only for the demo's own stack

    def runtime_state(self) -> dict[str, Any]:
        return read_state(self.state_dir) or {}


def healthy(api_url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/healthz", timeout=timeout) as answer:  # noqa: S310 (our own http URL)
            return bool(answer.status == 200)
    except OSError:
        return False


def attach(state_dir: Path, *, timeout: float = ATTACH_TIMEOUT_S) -> Stack:
    """The stack a `./taskw up` with this state dir is running, found by its
    runtime-state.json and checked by /healthz. A stack still starting is waited for: it
    says "running" once its sources have their partitions, i.e. an order flows at once."""
    deadline = time.monotonic() + timeout
    while True:
        state = read_state(state_dir) or {}
        phase, api_url = state.get("phase"), state.get("api_url")
        if phase == "running" and isinstance(api_url, str):
            break
        if phase != "starting" or not _alive(state) or time.monotonic() > deadline:
            raise StackError(f"no running stack found in {state_dir} (runtime-state.json): "
                             "start one with `./taskw up`, or run the demo without --attach")
        time.sleep(0.2)  # poll interval of a deadline-bounded wait
    if not healthy(api_url, timeout=3.0):
        raise StackError(f"the stack in {state_dir} says it runs at {api_url}, but "
                         f"{api_url}/healthz does not answer 200")
    return Stack(api_url, state_dir, own=False, payment_window_s=None)


def _alive(state: dict[str, Any]) -> bool:
    pid = state.get("pid")
    return isinstance(pid, int) and psutil.pid_exists(pid)


@contextmanager
def own_stack(state_dir: Path, *, payment_window_s: int,
              progress: Progress | None = None) -> Iterator[Stack]:
    """Start `saga up` in `state_dir` (emptied first), wait until it is healthy, and stop it
    on leaving the block, also on an error or Ctrl-C."""
    progress = progress or Progress.silent()
    _prepare(state_dir)
    port = free_port()
    env = dict(os.environ) | {
        "SAGA_STATE_DIR": str(state_dir),
        "SAGA_API_PORT": str(port),
        "SAGA_PAYMENT_WINDOW_S": str(payment_window_s),
        "SAGA_PROFILE": "local",
    }
    output = state_dir / "saga-up.log"
    with output.open("wb") as out:
        # A session of its own: the terminal's Ctrl-C reaches the demo, which then stops
        # the stack in order (SIGINT, as `./taskw up` expects) instead of both at once.
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.cli.main", "up"], cwd=REPO_ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        with progress.task("starting the demo's stack"):
            api_url = _wait_started(process, f"http://127.0.0.1:{port}", state_dir, output)
        yield Stack(api_url, state_dir, own=True, payment_window_s=payment_window_s)
    finally:
        with progress.task("stopping the demo's stack"):
            _stop(process)


def _prepare(state_dir: Path) -> None:
    """An empty state dir: a fresh embedded database each run (unless DATABASE_URL is
    set). Refuses if a stack from an earlier run still lives there."""
    state = read_state(state_dir) or {}
    if state.get("phase") in ("starting", "running") and _alive(state):
        pid = state["pid"]
        raise StackError(f"a stack from an earlier demo still runs in {state_dir} (pid {pid}); "
                         f"stop it with `kill -INT {pid}` and run the demo again")
    if state_dir.exists() and any(state_dir.iterdir()) and not (
            (state_dir / "saga-up.log").exists() or state):
        # Not a directory an earlier demo left: never delete what we did not make.
        raise StackError(f"{state_dir} exists and is not the demo's; move it away first")
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True, exist_ok=True)


def _wait_started(process: subprocess.Popen[bytes], api_url: str, state_dir: Path,
                  output: Path) -> str:
    """Ready: the runtime says "running" (every source has its partitions, so the first
    order flows at once) and the API answers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"`saga up` exited with {process.returncode} while starting:\n"
                             + _tail(output))
        state = read_state(state_dir) or {}
        if state.get("phase") == "running" and healthy(api_url):
            return api_url
        time.sleep(0.2)  # poll interval of a deadline-bounded wait
    raise StackError(f"`saga up` did not answer {api_url}/healthz within "
                     f"{START_TIMEOUT_S:.0f} s:\n" + _tail(output))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # Its own process group (start_new_session): this reaches only what it started.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])
