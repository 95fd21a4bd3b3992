"""runtime-state.json in settings.state_dir: what a running `./taskw up` is doing, for
`saga status` (another process) to read; and runtime.lock beside it, which the running
`saga up` holds (flock) so that a second one on the same state dir is refused.

Written whole and atomically (temp file + rename) on every change, so a reader never sees
half a file. Thread-safe: function processes report changes from whichever thread started
or stopped them. The kernel releases the lock when its holder ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from tools.runtime.console import now_iso
from tools.runtime.serving.function_process import FunctionStatus

STATE_FILE = "runtime-state.json"
LOCK_FILE = "runtime.lock"
Phase = Literal["starting", "running", "stopping", "stopped", "failed"]


class StackRunning(Exception):
    """A `saga up` already runs on this state dir; the message names it and the fix."""


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def resolve_state_dir(state_dir: Path, root: Path) -> Path:
    """SAGA_STATE_DIR as the runtime uses it: a relative one is under the checkout."""
    return state_dir if state_dir.is_absolute() else root / state_dir


@contextlib.contextmanager
def held(state_dir: Path) -> Iterator[None]:
    """Hold the state dir's lock for the block; StackRunning if another process holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / LOCK_FILE).open("a") as lock:  # not inherited: Python's files are
        try:                                        # close-on-exec
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackRunning(_running_message(state_dir)) from None
        yield


def runtime_holds(state_dir: Path) -> bool:
    """Whether a `saga up` runs on `state_dir` now (holds its lock)."""
    if not (state_dir / LOCK_FILE).exists():
        return False
    try:
        with held(state_dir):
            return False
    except StackRunning:
        return True


def _running_message(state_dir: Path) -> str:
    state = read_state(state_dir) or {}
    api = f", API {state['api_url']}" if state.get("api_url") else ""
    return (f"a stack already runs on {state_dir} (pid {state.get('pid', '?')}{api}): stop "
            "it with `saga down` (./taskw down), or give this one another SAGA_STATE_DIR")


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """The last state written, or None if no runtime ever ran here."""
    try:
        loaded = json.loads(state_path(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


class RuntimeState:
    def __init__(self, state_dir: Path, *, log_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._path = state_path(state_dir)
        self._lock = threading.Lock()
        self._doc: dict[str, Any] = {
            "pid": os.getpid(), "phase": "starting", "started_at": now_iso(),
            "updated_at": now_iso(), "api_url": None, "log_dir": str(log_dir.resolve()),
            "database_url": None, "kafka_bootstrap": None,
            "functions": {}, "sources": {}, "ping_sources": {},
        }
        self._write()

    def update(self, **fields: Any) -> None:
        with self._lock:
            self._doc.update(fields)
            self._write()

    def phase(self, phase: Phase) -> None:
        self.update(phase=phase)

    def stopped(self) -> None:
        """The end: "stopped", unless starting failed (that is worth keeping)."""
        with self._lock:
            if self._doc["phase"] != "failed":
                self._doc["phase"] = "stopped"
            self._write()

    def function_changed(self, status: FunctionStatus) -> None:
        with self._lock:
            self._doc["functions"][status.name] = asdict(status)
            self._write()

    def sources(self, sources: Mapping[str, Mapping[str, Any]],
                pings: Mapping[str, Mapping[str, Any]]) -> None:
        with self._lock:
            self._doc["sources"] = {name: dict(doc) for name, doc in sources.items()}
            self._doc["ping_sources"] = {name: dict(doc) for name, doc in pings.items()}
            self._write()

    def _write(self) -> None:
        self._doc["updated_at"] = now_iso()
        temporary = self._path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self._doc, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self._path)
