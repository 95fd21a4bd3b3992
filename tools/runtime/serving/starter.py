"""Starting a function's process: forked from the zygote of its flavour (zygote.py: the
libraries already imported) when there is one, else spawned fresh (`python -m
tools.runtime.serving.entrypoint`); docs/benchmarks.md has what each costs. A zygote is
started on first use and shared by the runtime's functions of its flavour; if it cannot
start, or dies, functions are spawned fresh: slower, never broken. When a file under
common/ changes while the runtime runs, the next start replaces that zygote first, so a
function started after an edit runs the edited code. Thread-safe."""

from __future__ import annotations

import http.client
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tools.runtime.serving import children
from tools.runtime.serving.children import Child
from tools.runtime.serving.zygote import PRELOAD_FLAVOURS, flavour_of
from tools.runtime.serving.zygote_client import ZygoteClient, ZygoteError


class ProcessStarter:
    def __init__(self, *, cwd: Path, env: Mapping[str, str], use_zygote: bool = True,
                 report: Callable[[str], None] | None = None) -> None:
        self._cwd, self._env = cwd, dict(env)
        self._use_zygote = use_zygote and sys.platform.startswith("linux")
        self._report = report or (lambda _line: None)
        self._lock = threading.Lock()
        # One zygote per flavour (zygote.PRELOAD_FLAVOURS), each started on first use.
        self._zygotes: dict[str, ZygoteClient] = {}
        self._zygote_failed = False
        self._closed = False
        self._retired: list[ZygoteClient] = []  # replaced, closed once their children end

    def prepare(self, flavours: tuple[str, ...] = tuple(PRELOAD_FLAVOURS)) -> None:
        """Start the zygotes now (each imports for ~1 s); later starts then only fork."""
        for flavour in flavours:
            self._client(flavour)

    def start(self, args: list[str], *, cwd: Path, env: dict[str, str],
              stdout: int | None = None) -> Child:
        """Start functions-framework with `args` (its own arguments); its stdout to the
        file descriptor `stdout` if given (stderr then on the output pipe)."""
        client = self._client(flavour_of(env))
        if client is not None:
            try:
                return client.spawn(args, cwd=cwd, env=env, stdout=stdout)
            except ZygoteError as exc:
                self._report(f"zygote ({client.flavour}): {exc}; starting functions without it "
                             "from now on")
                with self._lock:
                    self._zygote_failed = True
        return children.spawn([sys.executable, "-m", "tools.runtime.serving.entrypoint", *args],
                              cwd=cwd, env=env, stdout=stdout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            clients = [*self._retired, *self._zygotes.values()]
            self._zygotes, self._retired = {}, []
        for client in clients:
            client.close()

    def _client(self, flavour: str) -> ZygoteClient | None:
        # Under the lock: concurrent first starts wait for one zygote instead of racing.
        with self._lock:
            if not self._use_zygote or self._zygote_failed or self._closed:
                return None
            current = self._zygotes.get(flavour)
            if current is not None and _newest_source() > current.loaded_at:
                self._report(f"zygote ({flavour}): common/ changed; loading it again")
                # Not closed yet: its children would get SIGTERM (their PDEATHSIG).
                self._retired.append(self._zygotes.pop(flavour))
                current = None
            for old in [z for z in self._retired if not z.has_children()]:
                self._retired.remove(old)
                old.close()
            if current is None:
                try:
                    current = ZygoteClient(self._cwd, {**os.environ, **self._env},
                                           flavour=flavour, output=self._report)
                    self._zygotes[flavour] = current
                except ZygoteError as exc:
                    self._report(f"zygote ({flavour}): {exc}; starting functions without it")
                    self._zygote_failed = True
            return current


def _newest_source() -> float:
    """The latest modification time of the common library's source (~1 ms to stat)."""
    import common

    package = Path(common.__file__).parent
    return max((path.stat().st_mtime for path in package.rglob("*.py")), default=0.0)


def wait_answering(process: Child, port: int, deadline: float) -> str | None:
    """Wait until the function answers HTTP on `port`; None, or what went wrong.

    gunicorn listens before its worker has imported the function, and connections queue
    until then: ready means an HTTP answer. /robots.txt reaches no user code (404 for
    http functions, 405 for event functions)."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with code {process.returncode} while starting"
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        try:
            connection.request("GET", "/robots.txt")
            connection.getresponse().read()
            return None
        except OSError:
            time.sleep(0.02)  # polling a starting process, bounded by the deadline
        finally:
            connection.close()
    return f"did not answer on port {port} in time"
