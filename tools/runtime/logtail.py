"""What the console shows of the functions' own log lines, read from their files.

A function's stdout is its log file (.local/logs/<function>.ndjson, opened for appending:
processes.py), so its ECS lines go straight to disk as a pod's go to its container log;
none crosses a pipe for the runtime to read, parse and write out again (that was a
quarter of the runtime's CPU: docs/benchmarks.md). The console still shows what it did:
every warning or worse, and handled events within its rate (Console.admit_routine).

One thread for every file: each half second it reads what was appended and parses only the
lines it will show. Those are found by searching the whole chunk for their bytes (a level
of warning or worse, an event.action of saga.*), so the thousand lines a second of a busy
stack cost a read and a few searches in C, not a JSON parse, nor any Python, per line.
Lines the runtime writes into the same files (cold starts: it shows those itself when it
writes them) are not shown twice. Thread-safe.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from tools.runtime.console import Console, is_saga_event, is_warning

INTERVAL_S = 0.5
# A warning or worse, by its bytes; the formatter writes log.level flat, near the start.
_WARNING = re.compile(rb'"log\.level":"(?:warn|warning|error|critical|fatal)"')
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
            # A console whose stream was closed (its owner ended) stops nobody's logs: the
            # lines are in their files; the tail only stops showing them.
            with contextlib.suppress(OSError, ValueError):
                self.poll()

    def _show(self, data: bytes) -> None:
        """Show what `data` (whole lines) holds for the console. Lines are found with
        searches over the whole chunk: nothing is done line by line for the lines not shown."""
        warnings = set()
        for match in _WARNING.finditer(data):
            start, end = _line_at(data, match.start())
            doc = _parse(data[start:end])
            if doc is not None and is_warning(doc):
                warnings.add(start)
                self._console.ecs(doc)
        arriving = data.count(_HANDLED) - data.count(_OWN)
        arriving -= sum(1 for start in warnings if _HANDLED in data[start:_line_at(data, start)[1]])
        shown = self._console.admit_routine(max(arriving, 0))
        position = 0
        while shown > 0:
            found = data.find(_HANDLED, position)
            if found < 0:
                return
            start, end = _line_at(data, found)
            position = end + 1
            line = data[start:end]
            if start in warnings or _OWN in line:
                continue
            doc = _parse(line)
            if doc is not None and is_saga_event(doc):
                self._console.ecs(doc)
                shown -= 1


def _line_at(data: bytes, index: int) -> tuple[int, int]:
    """Start and end (exclusive, before its newline) of the line holding `index`."""
    start = data.rfind(b"\n", 0, index) + 1
    end = data.find(b"\n", index)
    return start, len(data) if end < 0 else end


def _new_lines(entry: _Followed) -> bytes:
    """The whole lines appended since the last read (a partial last line waits)."""
    try:
        with entry.path.open("rb") as file:
            size = file.seek(0, 2)
            if size < entry.position:  # truncated or replaced: start over
                entry.position, entry.partial = 0, b""
            if size - entry.position > _MAX_READ:
                entry.position, entry.partial = size, b""
                return b""
            file.seek(entry.position)
            data = file.read(size - entry.position)
    except OSError:
        return b""
    entry.position += len(data)
    data = entry.partial + data
    cut = data.rfind(b"\n") + 1
    entry.partial = data[cut:]
    return data[:cut]


def _parse(line: bytes) -> dict[str, object] | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
