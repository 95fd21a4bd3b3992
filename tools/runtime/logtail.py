"""What the console shows of the functions' own log lines: every warning or worse, and the
handled events within its rate (Console.admit_routine), read from their files (a
function's stdout is <state dir>/logs/<function>.ndjson, as a pod's is its container log).
One thread reads what each file gained every half second and parses only the lines it
will show, found by a byte search of the whole chunk. Lines reach their files out of time
order, so each goes through one TimeOrder (held HOLD_S after its @timestamp, then shown
sorted); lines the runtime writes into those files are not shown twice. Thread-safe."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from tools.runtime.console import Console, field, is_saga_event, is_warning

INTERVAL_S = 0.5
# How long a line waits for one with an earlier @timestamp that reached its file later (a
# process descheduled between making a line and writing it): a read's worth.
HOLD_S = 0.5
# A warning or worse, by its bytes; the formatter writes log.level flat, near the start.
_WARNING = re.compile(rb'"log\.level":"(?:warn|warning|error|critical|fatal)"')
_HANDLED = b'"action":"saga.'
_OWN = b'"action":"saga.cold_start"'  # written and shown by the runtime itself
_MAX_READ = 4 << 20  # a burst larger than this is skipped (it is all in the file)

T = TypeVar("T")
Doc = dict[str, Any]


def stamp_of(doc: Mapping[str, Any]) -> float | None:
    """A document's @timestamp in seconds since the epoch (None: none, or not ISO 8601)."""
    try:
        return datetime.fromisoformat(str(field(doc, "@timestamp"))).timestamp()
    except ValueError:
        return None


class TimeOrder(Generic[T]):
    """Items released in the order of their times, each once `hold_s` has passed since its
    time, so that one added a little late still comes out before those after it.
    Thread-safe."""

    def __init__(self, hold_s: float) -> None:
        self._hold = hold_s
        self._heap: list[tuple[float, int, T]] = []
        self._count = itertools.count()  # equal times keep the order they were added in
        self._lock = threading.Lock()

    def add(self, at: float, item: T) -> None:
        with self._lock:
            heapq.heappush(self._heap, (at, next(self._count), item))

    def due(self, now: float) -> list[T]:
        """The items whose time is at least `hold_s` before `now`, oldest first."""
        out = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now - self._hold:
                out.append(heapq.heappop(self._heap)[2])
        return out

    def drain(self) -> list[T]:
        """Every item, oldest first (at the end: nothing more will come)."""
        return self.due(float("inf"))


@dataclass
class FollowedFile:
    """A file read as it grows: each read returns the whole lines appended since the last."""

    path: Path
    position: int = 0
    partial: bytes = b""

    @classmethod
    def from_end(cls, path: Path) -> FollowedFile:
        return cls(path, path.stat().st_size if path.exists() else 0)

    def read_new(self) -> bytes:
        """The whole lines appended since the last read (a partial last line waits)."""
        try:
            with self.path.open("rb") as file:
                size = file.seek(0, 2)
                if size < self.position:  # truncated or replaced: start over
                    self.position, self.partial = 0, b""
                if size - self.position > _MAX_READ:
                    self.position, self.partial = size, b""
                    return b""
                file.seek(self.position)
                data = file.read(size - self.position)
        except OSError:
            return b""
        self.position += len(data)
        data = self.partial + data
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        return data[:cut]


class LogTail:
    """Shows the console its share of the watched files, and puts every ECS document the
    console shows (the runtime's own too: Console.route_ecs) in time order."""

    def __init__(self, console: Console, *, interval_s: float = INTERVAL_S,
                 hold_s: float = HOLD_S, clock: Callable[[], float] = time.time) -> None:
        self._console = console
        self._interval = interval_s
        self._clock = clock
        self._order: TimeOrder[Doc] = TimeOrder(hold_s)
        self._lock = threading.Lock()
        self._files: dict[Path, FollowedFile] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._routing = console.route_ecs(self._add)

    def watch(self, path: Path) -> None:
        """Show what is appended to `path` from now on (a no-op if already watched)."""
        with self._lock:
            if path not in self._files:
                self._files[path] = FollowedFile.from_end(path)
        self._ensure_thread()

    def close(self) -> None:
        """Show what is left, in order, then stop."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(5)
        if self._routing:  # from now on the console shows the runtime's documents itself
            self._console.route_ecs(None)
        with contextlib.suppress(OSError, ValueError):
            self._read()
            for doc in self._order.drain():
                self._console.show(doc)

    def poll(self) -> None:
        """Read what was appended since the last poll, and show what is due (the thread
        calls this)."""
        self._read()
        for doc in self._order.due(self._clock()):
            self._console.show(doc)

    def _add(self, doc: Mapping[str, Any]) -> None:
        """A document to show, in its place in time."""
        at = stamp_of(doc)
        self._order.add(self._clock() if at is None else at, dict(doc))
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="log-tail",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            # A console whose stream was closed (its owner ended) stops nobody's logs: the
            # lines are in their files; the tail only stops showing them.
            with contextlib.suppress(OSError, ValueError):
                self.poll()

    def _read(self) -> None:
        """Read every file, and add what the console shows of it to the order: every
        warning, and the earliest handled events the console's rate admits."""
        with self._lock:
            followed = list(self._files.values())
        chunks: list[tuple[bytes, set[int]]] = []
        arriving = 0
        for entry in followed:
            data = entry.read_new()
            if not data:
                continue
            warnings = _warnings(data)
            for doc in warnings.values():
                self._add(doc)
            arriving += data.count(_HANDLED) - data.count(_OWN) - sum(
                _HANDLED in _line(data, start) for start in warnings)
            chunks.append((data, set(warnings)))
        shown = self._console.admit_routine(max(arriving, 0))
        if shown <= 0:
            return
        # Each file's first `shown` handled events are its earliest; of those, the earliest
        # `shown` of all files are shown (admit_routine counted the rest as left out).
        candidates = [doc for data, skip in chunks for doc in _handled(data, shown, skip=skip)]
        candidates.sort(key=lambda doc: stamp_of(doc) or 0.0)
        for doc in candidates[:shown]:
            self._add(doc)


def _warnings(data: bytes) -> dict[int, Doc]:
    """The warnings (or worse) in `data`, by the start of their line."""
    found = {}
    for match in _WARNING.finditer(data):
        start = _line_at(data, match.start())[0]
        doc = _parse(_line(data, start))
        if doc is not None and is_warning(doc):
            found[start] = doc
    return found


def _handled(data: bytes, limit: int, *, skip: set[int]) -> list[Doc]:
    """The first `limit` handled events of `data` (not the runtime's own, nor `skip`)."""
    docs: list[Doc] = []
    position = 0
    while len(docs) < limit:
        found = data.find(_HANDLED, position)
        if found < 0:
            break
        start, end = _line_at(data, found)
        position = end + 1
        line = data[start:end]
        if start in skip or _OWN in line:
            continue
        doc = _parse(line)
        if doc is not None and is_saga_event(doc):
            docs.append(doc)
    return docs


def _line(data: bytes, start: int) -> bytes:
    return data[start:_line_at(data, start)[1]]


def _line_at(data: bytes, index: int) -> tuple[int, int]:
    """Start and end (exclusive, before its newline) of the line holding `index`."""
    start = data.rfind(b"\n", 0, index) + 1
    end = data.find(b"\n", index)
    return start, len(data) if end < 0 else end


def _parse(line: bytes) -> Doc | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
