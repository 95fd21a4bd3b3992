"""Small pieces of `./taskw up`'s start: phase timings, its waits (each ends at once on a
stop request: Ctrl-C must not wait for a start to finish) and the banner."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class Clock:
    """Wall time of each start-up phase, for the banner and runtime-state.json."""

    def __init__(self, timings: dict[str, float]) -> None:
        self._timings = timings

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self._timings[phase] = round(time.monotonic() - started, 2)

    def timed(self, phase: str, function: Callable[..., Any], *args: Any) -> Any:
        with self(phase):
            return function(*args)


class StopRequested(Exception):
    """Ctrl-C, SIGTERM, SIGHUP or `stop` while starting: unwind what was started."""


def wait_until(ready: Callable[[], bool], *, stop: threading.Event, timeout: float,
               interval: float = 0.05) -> bool:
    """Ask ready() every `interval` until it says True (True) or `timeout` passed (False);
    StopRequested as soon as `stop` is set."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        if ready():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        stop.wait(min(interval, remaining))
    raise StopRequested


def wait_healthy(url: str, *, stop: threading.Event, timeout: float) -> None:
    last = "no answer"

    def healthy() -> bool:
        nonlocal last
        try:
            with urllib.request.urlopen(url, timeout=2.0) as reply:  # noqa: S310 (local URL)
                if reply.status == 200:
                    return True
                last = f"HTTP {reply.status}"
        except OSError as exc:
            last = str(exc)
        return False

    if not wait_until(healthy, stop=stop, timeout=timeout):
        raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s ({last})")


def banner(api_url: str | None, console_url: str | None, log_dir: Path,
           timings: dict[str, float], total: float) -> str:
    # Phases overlap (migrations run while topics are created), so they do not add up.
    phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in timings.items())
    lines = ["", f"  order saga is up in {total:.1f} s"]
    if api_url:
        lines += [f"  API      {api_url}   (Swagger UI: {api_url}/docs, cabinet: "
                  f"{api_url}/cabinet)"]
    if console_url:
        lines += [f"  console  {console_url}   (operators: sign in with "
                  "./taskw token -- --customer you --admin)"]
    lines += [f"  logs     {log_dir}/<function>.ndjson",
              "  stop     Ctrl-C, or ./taskw down from another terminal",
              f"  timings  {phases}", ""]
    return "\n".join(lines)
