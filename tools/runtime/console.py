"""What a person watching `./taskw up` sees, and the ECS lines the runtime itself writes.

Functions log one ECS JSON line per handled event; the console shows each as ONE readable
line (time, function, event type, order id, outcome, duration) while the full line goes to
the function's .ndjson file. The runtime's own events (cold starts, retries, dead letters)
are ECS lines too, so Kibana sees them the same way a cluster's would be seen.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from common.logging import ECS_VERSION

_WARNING_LEVELS = {"warning", "warn", "error", "critical", "fatal"}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ecs_event(action: str, *, service: str, message: str, outcome: str | None = None,
              duration_s: float | None = None, level: str = "info",
              **sections: Mapping[str, Any]) -> dict[str, Any]:
    """An ECS document shaped like ecs-logging's: flat @timestamp/log.level/message, the
    rest nested. `sections` become top-level objects (labels=..., cloudevents=...)."""
    event: dict[str, Any] = {"action": action, "kind": "event"}
    if outcome is not None:
        event["outcome"] = outcome
    if duration_s is not None:
        event["duration"] = int(duration_s * 1e9)
    doc: dict[str, Any] = {"@timestamp": now_iso(), "log.level": level, "message": message,
                           "ecs.version": ECS_VERSION, "service": {"name": service},
                           "event": event}
    doc.update({name: dict(value) for name, value in sections.items()})
    return doc


def field(doc: Mapping[str, Any], dotted: str) -> Any:
    """`dotted` from an ECS document, whether it was written nested or with dotted keys."""
    if dotted in doc:
        return doc[dotted]
    head, _, rest = dotted.partition(".")
    value = doc.get(head)
    if rest and isinstance(value, Mapping):
        return field(value, rest)
    return None if rest else value


def short_type(event_type: str | None) -> str:
    """shop.order.created.v1 -> order.created, dev.knative.sources.ping -> ping."""
    if not event_type:
        return "-"
    if event_type.startswith("dev.knative."):
        return event_type.rsplit(".", 1)[-1] if "sources" in event_type else event_type[12:]
    parts = event_type.split(".")
    if len(parts) >= 3 and parts[0] == "shop" and parts[-1].startswith("v"):
        return ".".join(parts[1:-1])
    return event_type


def summarise(doc: Mapping[str, Any]) -> str:
    """One readable line for an ECS document."""
    stamp = field(doc, "@timestamp")
    try:
        when = datetime.fromisoformat(str(stamp)).astimezone().strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        when = str(stamp or "")[:12]
    action = str(field(doc, "event.action") or "")
    outcome = str(field(doc, "event.outcome") or "")
    step = action.rsplit(".", 1)[-1] if action.startswith("saga.step.") else ""
    if step and step not in ("completed", "failed"):
        outcome = f"{outcome} ({step})" if outcome else step
    elif action and not action.startswith("saga.step."):
        outcome = action.removeprefix("saga.").removeprefix("knative.")
    duration = field(doc, "event.duration")
    duration_text = f"{duration / 1e6:8.1f} ms" if isinstance(duration, int | float) else ""
    order = str(field(doc, "labels.order_id") or field(doc, "cloudevents.subject") or "-")[:8]
    line = (f"{when}  {field(doc, 'service.name') or '?'!s:<14} "
            f"{short_type(field(doc, 'cloudevents.type')):<20} {order:<8}  "
            f"{outcome:<24} {duration_text}")
    if not action.startswith("saga.step.") or outcome.startswith("fail"):
        message = str(field(doc, "message") or "")
        if message:
            line = f"{line}  {message}"
    return line.rstrip()


def is_warning(doc: Mapping[str, Any]) -> bool:
    """A line the console always shows: a warning or worse."""
    return str(field(doc, "log.level") or "").lower() in _WARNING_LEVELS


def is_saga_event(doc: Mapping[str, Any]) -> bool:
    """A routine line: a handled event (shown within the console's rate)."""
    action = field(doc, "event.action")
    return isinstance(action, str) and action.startswith("saga.")


class Console:
    """Serialises lines from many threads onto one stream. Thread-safe.

    json_mode prints ECS documents as they are (for piping into a log shipper) instead of
    the readable summary.

    Routine lines (handled events) are limited to `events_per_s` a second: beyond what a
    person can read, a busy stack (a load test: hundreds of events a second) prints one
    line a second saying how many it left out, and spends its CPU on the saga instead of
    on formatting. Every line is still in the functions' .ndjson files; warnings and
    errors are never left out."""

    def __init__(self, stream: TextIO | None = None, *, json_mode: bool = False,
                 events_per_s: int = 25) -> None:
        self._stream = stream
        self._json = json_mode
        self._lock = threading.Lock()
        self._events_per_s = events_per_s
        self._second = 0
        self._shown = self._skipped = 0
        self._router: Callable[[Mapping[str, Any]], None] | None = None

    def route_ecs(self, router: Callable[[Mapping[str, Any]], None] | None) -> bool:
        """Send the documents given to ecs() to `router` (a LogTail, which shows them in
        time order with the functions' lines) instead of showing them at once; None ends
        that. False (and nothing changed) if another router has them already."""
        with self._lock:
            if router is not None and self._router is not None:
                return False
            self._router = router
            return True

    def routine(self, doc: Mapping[str, Any]) -> None:
        """A handled event's line, if this second's share is not used up."""
        if self.admit_routine(1):
            self.ecs(doc)

    def admit_routine(self, arriving: int) -> int:
        """Of `arriving` routine lines, how many this second's share still shows (the first
        ones); the rest are counted as left out, which is said once the second is over."""
        now = int(time.monotonic())
        with self._lock:
            if now != self._second:
                skipped, self._second, self._shown, self._skipped = self._skipped, now, 0, 0
            else:
                skipped = 0
            shown = max(0, min(arriving, self._events_per_s - self._shown))
            self._shown += shown
            self._skipped += arriving - shown
        if skipped:
            self.line(f"... and {skipped} more handled events in that second (all of them "
                      "are in the logs: saga trace ORDER_ID)")
        return shown

    def line(self, text: str) -> None:
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(text + "\n")
            stream.flush()

    def ecs(self, doc: Mapping[str, Any]) -> None:
        """An ECS document: to the router if there is one (route_ecs), else shown now."""
        router = self._router
        if router is not None:
            router(doc)
        else:
            self.show(doc)

    def show(self, doc: Mapping[str, Any]) -> None:
        self.line(json.dumps(doc, separators=(",", ":")) if self._json else summarise(doc))


class LogFile:
    """An append-only NDJSON file written by several threads. Thread-safe.

    Every line in it is a JSON object: a function's non-JSON output (a traceback, gunicorn's
    own messages) is wrapped in a minimal ECS document so the file stays valid NDJSON for
    Filebeat."""

    def __init__(self, path: Path, service: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._service = service
        self._lock = threading.Lock()
        self._file: TextIO | None = path.open("a", encoding="utf-8")

    def write_raw(self, line: str) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()

    def write_doc(self, doc: Mapping[str, Any]) -> None:
        self.write_raw(json.dumps(doc, separators=(",", ":")))

    def write_text(self, text: str) -> None:
        self.write_doc({"@timestamp": now_iso(), "log.level": "info", "message": text,
                        "ecs.version": ECS_VERSION, "service": {"name": self._service},
                        "log": {"logger": "stdout"}})

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
