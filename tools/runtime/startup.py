"""Small pieces of `./taskw up`'s start: phase timings, the health wait and the banner."""

from __future__ import annotations

import contextlib
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


def wait_healthy(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2.0) as reply:  # noqa: S310 (local URL)
                if reply.status == 200:
                    return
                last = f"HTTP {reply.status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
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
