"""What the console shows of the functions' own log lines, read from their files.

A function's stdout is its log file (.local/logs/<function>.ndjson, opened for appending:
processes.py), so its ECS lines go straight to disk as a pod's go to its container log;
none crosses a pipe for the runtime to read, parse and write out again (that was a
quarter of the runtime's CPU: docs/benchmarks.md). The console still shows what it did:
every warning or worse, and handled events within its rate (Console.admit_routine).

One thread for every file: each half second it reads what was appended and parses only the
lines it will show. A line is picked by its bytes first (its level, its event.action), so
the thousand lines a second of a busy stack cost a read and a few substring searches, not
a JSON parse each. Lines the runtime writes into the same files (cold starts: it shows
those itself when it writes them) are not shown twice. Thread-safe.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from tools.runtime.console import Console, is_saga_event, is_warning

INTERVAL_S = 0.5
_WARNING = (b'"log.level":"warning"', b'"log.level":"warn"', b'"log.level":"error"',
            b'"log.level":"critical"', b'"log.level":"fatal"')
_HANDLED = b'"action":"saga.'
_OWN = b'"action":"saga.cold_start"'  # written and shown by the runtime itself
_MAX_READ = 4 << 20  # a burst larger than this is skipped (it is all in the file)


@dataclass
class _Followed:
    path: Path
    position: int
    partial: bytes = b""


class LogTail:
    def __init__(self, console: Console, *, interval_s: float = INTERVAL_S) -> None:
        self._console = console
        self._interval = interval_s
        self._lock = threading.Lock()
        self._files: dict[Path, _Followed] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, path: Path) -> None:
        """Show what is appended to `path` from now on (a no-op if already watched)."""
        with self._lock:
            if path not in self._files:
                size = path.stat().st_size if path.exists() else 0
                self._files[path] = _Followed(path, size)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="log-tail",
                                                daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Show what is left, then stop."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(5)
        self.poll()

    def poll(self) -> None:
        """Read and show what was appended since the last poll (the thread calls this)."""
        with self._lock:
            followed = list(self._files.values())
        for entry in followed:
            self._show(_new_lines(entry))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    def _show(self, lines: list[bytes]) -> None:
        routine: list[bytes] = []
        for line in lines:
            if any(marker in line for marker in _WARNING):
                doc = _parse(line)
                if doc is not None and is_warning(doc):
                    self._console.ecs(doc)
                    continue
            if _HANDLED in line and _OWN not in line:
                routine.append(line)
        shown = self._console.admit_routine(len(routine))
        for line in routine[:shown]:
            doc = _parse(line)
            if doc is not None and is_saga_event(doc):
                self._console.ecs(doc)


def _new_lines(entry: _Followed) -> list[bytes]:
    try:
        with entry.path.open("rb") as file:
            size = file.seek(0, 2)
            if size < entry.position:  # truncated or replaced: start over
                entry.position, entry.partial = 0, b""
            if size - entry.position > _MAX_READ:
                entry.position, entry.partial = size, b""
                return []
            file.seek(entry.position)
            data = file.read(size - entry.position)
    except OSError:
        return []
    entry.position += len(data)
    *lines, entry.partial = (entry.partial + data).split(b"\n")
    return lines


def _parse(line: bytes) -> dict[str, object] | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
