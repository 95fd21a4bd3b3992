"""`saga logs`: the log lines of one function or of all, from <state dir>/logs/*.ndjson, in
the one-line form the console of `./taskw up` prints (tools/runtime/console.py summarise),
merged by @timestamp (each function writes its own file; knative.ndjson holds the runtime's
lines about deliveries, each naming the function it delivered to). Optionally one order's
lines, or those since a moment; follow() then shows what is written next, in time order
within a small window (tools/runtime/logtail.py's TimeOrder).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.manifests.durations import parse_go_duration
from tools.ops.context import OpsContext, OpsError
from tools.ops.orders import resolve_order_id
from tools.runtime.console import field, summarise
from tools.runtime.logtail import FollowedFile, TimeOrder, stamp_of

RUNTIME_LOG = "knative"  # the runtime's own file (tools/runtime/up.py): retries, dead letters
FOLLOW_EVERY_S = 0.25
FOLLOW_HOLD_S = 0.5  # a line waits this long after its @timestamp for an earlier, later one


@dataclass(frozen=True)
class Query:
    functions: frozenset[str] = frozenset()  # empty: every function
    order_id: str | None = None
    since: float | None = None  # seconds since the epoch


@dataclass(frozen=True)
class Line:
    at: float
    raw: str  # the ECS line as it is in its file
    doc: dict[str, Any]

    def text(self, *, as_json: bool) -> str:
        """The console's one line, or (as_json) the ECS line itself."""
        return self.raw if as_json else summarise(self.doc)


def function_names(ctx: OpsContext) -> list[str]:
    """What FUNCTION may name: every function of the manifests, and the runtime's file."""
    return sorted({*ctx.manifests.functions, RUNTIME_LOG})


def query(ctx: OpsContext, function: str | None, order: str | None, since: str | None, *,
          now: float) -> Query:
    """The arguments checked: an unknown function lists the valid ones."""
    names = function_names(ctx)
    if function is not None and function not in names:
        raise OpsError(f"no function named {function!r}; the functions are: "
                       f"{', '.join(names)}")
    return Query(frozenset({function} if function else ()),
                 None if order is None else resolve_order_id(ctx, order),
                 None if since is None else now - _duration(since))


def mentions_order(doc: dict[str, Any], order: str) -> bool:
    """A line about `order`: its labels.order_id, or the subject of its CloudEvent."""
    return order in (field(doc, "labels.order_id"), field(doc, "cloudevents.subject"))


def _duration(text: str) -> float:
    try:
        seconds = parse_go_duration(text)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise OpsError(f"--since {text!r} is not a duration: e.g. 30s, 10m, 1h30m")
    return seconds


def no_logs(ctx: OpsContext) -> str | None:
    """Why there are no logs to read (where it looked, how to get some), or None."""
    if ctx.log_dir.is_dir():
        return None
    return (f"no logs in {ctx.log_dir}: a running stack writes them there. Start one with "
            "`./taskw up`, or point SAGA_STATE_DIR at the state dir of the one you ran")


def read(log_dir: Path, wanted: Query) -> tuple[list[Line], dict[Path, FollowedFile]]:
    """Every wanted line written so far, oldest first; and each file, positioned after what
    was read (for follow)."""
    lines: list[Line] = []
    files: dict[Path, FollowedFile] = {}
    for path in _files(log_dir, wanted):
        followed = FollowedFile(path)
        lines.extend(_whole_lines(followed, wanted))
        files[path] = followed
    lines.sort(key=lambda line: line.at)  # stable: a file's own order where times tie
    return lines, files


def follow(log_dir: Path, wanted: Query, files: dict[Path, FollowedFile],
           show: Callable[[Line], None], stop: threading.Event, *,
           every_s: float = FOLLOW_EVERY_S, hold_s: float = FOLLOW_HOLD_S,
           clock: Callable[[], float] = time.time) -> None:
    """Show the wanted lines written from now on, in time order (each held `hold_s` after its
    @timestamp), until `stop` is set; a file that appears (a function's first start) is read
    from its beginning."""
    order: TimeOrder[Line] = TimeOrder(hold_s)
    while not stop.wait(every_s):
        for path in _files(log_dir, wanted):
            files.setdefault(path, FollowedFile(path))
        for followed in files.values():
            for line in _parse(followed.path, followed.read_new().decode("utf-8", "replace"),
                               wanted, clock):
                order.add(line.at, line)
        for line in order.due(clock()):
            show(line)
    for line in order.drain():
        show(line)


def _files(log_dir: Path, wanted: Query) -> list[Path]:
    """The files that may hold wanted lines: the functions' own and the runtime's."""
    paths = sorted(log_dir.glob("*.ndjson"))
    if not wanted.functions:
        return paths
    return [p for p in paths if p.stem in wanted.functions or p.stem == RUNTIME_LOG]


def _whole_lines(followed: FollowedFile, wanted: Query) -> Iterator[Line]:
    """The complete lines of a file (not a last one still being written), read as a stream;
    `followed` ends up after them."""
    try:
        with followed.path.open("rb") as file:
            for raw in file:
                if not raw.endswith(b"\n"):
                    break
                followed.position += len(raw)
                yield from _parse(followed.path, raw.decode("utf-8", "replace"), wanted,
                                  time.time)
    except OSError:
        return


def _parse(path: Path, text: str, wanted: Query, clock: Callable[[], float]
           ) -> Iterator[Line]:
    for raw in text.splitlines():
        if wanted.order_id is not None and wanted.order_id not in raw:
            continue  # cheap: most lines are about other orders
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(doc, dict) or not _belongs(path, doc, wanted):
            continue
        if wanted.order_id is not None and not mentions_order(doc, wanted.order_id):
            continue
        at = stamp_of(doc)
        if wanted.since is not None and (at is None or at < wanted.since):
            continue
        yield Line(clock() if at is None else at, raw, doc)


def _belongs(path: Path, doc: dict[str, Any], wanted: Query) -> bool:
    """A line of one of the wanted functions: in its own file, or the runtime's line about a
    delivery to it (service.name is the function delivered to)."""
    if not wanted.functions or path.stem in wanted.functions:
        return True
    return path.stem == RUNTIME_LOG and field(doc, "service.name") in wanted.functions
