"""One function's process: started from its Knative Service manifest, again on demand after
it scaled to zero, stopped without leaving anything behind. Its stdout (the ECS lines) is
its log file, opened for appending, as a pod's stdout is its container log (logtail.py
shows the console its share); its stderr comes through a pipe (output.py). Thread-safe:
acquire/release/hold/release_hold/stop_if_idle/stop may be called from any thread; a start
happens under the process's lock, so concurrent deliveries to a function that scaled to
zero wait for one cold start."""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tools.infra.ports import free_port, port_is_free
from tools.manifests.specs import FunctionSpec
from tools.runtime.console import Console, LogFile, ecs_event
from tools.runtime.eventing.delivery import FunctionUnavailable
from tools.runtime.logtail import LogTail
from tools.runtime.serving import children
from tools.runtime.serving.children import Child
from tools.runtime.serving.output import OutputPump
from tools.runtime.serving.starter import ProcessStarter, wait_answering

State = Literal["not_started", "running", "scaled_to_zero", "stopped"]


@dataclass(frozen=True)
class FunctionStatus:
    name: str
    state: State
    port: int
    pid: int | None
    min_scale: int
    last_cold_start_ms: float | None


@dataclass(frozen=True)
class Hold:
    """A request from outside the runtime, let in: where to send it, and whether letting it
    in started the function."""

    id: str
    port: int
    cold_start: bool


class FunctionProcess:
    def __init__(
        self,
        spec: FunctionSpec,
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_dir: Path,
        console: Console,
        idle_after: float,
        port: int | None = None,
        preferred_port: int | None = None,
        start_timeout: float = 30.0,
        stop_grace: float = 10.0,
        on_change: Callable[[FunctionStatus], None] | None = None,
        starter: ProcessStarter | None = None,
        tail: LogTail | None = None,
    ) -> None:
        self.spec = spec
        self.idle_after = idle_after
        self._cwd, self._env, self._console = cwd, dict(env), console
        # Without a shared starter (tests, the benchmark): spawned fresh, no zygote.
        self._starter = starter or ProcessStarter(cwd=cwd, env=env, use_zygote=False)
        self._fixed_port = port is not None
        # A preferred port (the console's) is taken when free, and else any free one is.
        if port is None:
            free = preferred_port is not None and port_is_free(preferred_port)
            port = preferred_port if free and preferred_port else free_port()
        self._port = port
        self._start_timeout, self._stop_grace = start_timeout, stop_grace
        self._on_change = on_change
        self._log_path = log_dir / f"{spec.name}.ndjson"
        self._log = LogFile(self._log_path, spec.name)
        # Without a shared tail (tests, the benchmark): one of its own.
        self._own_tail = tail is None
        self._tail = tail or LogTail(console)
        self._tail.watch(self._log_path)
        self._lock = threading.Lock()
        self._process: Child | None = None
        self._pump: OutputPump | None = None
        self._state: State = "not_started"
        self._in_flight = 0
        # Requests sent from outside the runtime (`saga send --to`): hold id -> deadline.
        self._holds: dict[str, float] = {}
        self._last_used = time.monotonic()
        self._last_cold_start_ms: float | None = None
        self._restarts, self._restart_after = 0, 0.0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def status(self) -> FunctionStatus:
        with self._lock:
            return self._status()

    def start(self) -> None:
        """Start it now (a function kept warm, or the first start); a no-op if running."""
        with self._lock:
            if not self._running():
                self._start(cold=False)

    def acquire(self) -> str:
        """Before a request: start the function if it is not running (a cold start) and
        keep it from being scaled to zero until release(). The base URL."""
        with self._lock:
            self._start_if_needed()
            self._in_flight += 1
            return self.url

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._last_used = time.monotonic()

    def hold(self, seconds: float) -> Hold:
        """Before a request sent from outside the runtime (`saga send --to`): what acquire()
        does, until release_hold(), or for `seconds` at most (a sender that died never
        releases)."""
        with self._lock:
            started = self._start_if_needed()
            hold = Hold(secrets.token_hex(8), self._port, cold_start=started)
            self._holds[hold.id] = time.monotonic() + seconds
            return hold

    def release_hold(self, hold: str) -> bool:
        """The held request is over (its idle period starts now); False if no such hold."""
        with self._lock:
            if self._holds.pop(hold, None) is None:
                return False
            self._last_used = time.monotonic()
            return True

    def stop_if_idle(self, now: float | None = None) -> bool:
        """Scale to zero if nothing was delivered for idle_after seconds (min-scale 0 only)."""
        with self._lock:
            now = now if now is not None else time.monotonic()
            self._expire_holds(now)
            if (self.spec.min_scale > 0 or self._in_flight or self._holds
                    or self._process is None or now - self._last_used < self.idle_after):
                return False
            idle = now - self._last_used
            self._terminate()
            self._state = "scaled_to_zero"
            # A plain line, not an event: the log contract (tools/log_contract.py) has
            # no scale-to-zero action, and lines must keep it.
            message = f"scaled to zero after {idle:.0f} s without events"
            self._log.write_text(message)
            self._console.line(f"{self.name:<14} | {message}")
            self._changed()
            return True

    def keep_warm(self) -> None:
        """Restart a min-scale >= 1 function that exited on its own, as Kubernetes restarts
        a crashed container."""
        with self._lock:
            # "not_started": its start with the runtime failed; keep trying.
            if (self.spec.min_scale == 0 or self._state not in ("running", "not_started")
                    or self._running() or time.monotonic() < self._restart_after):
                return
            try:
                self._start(cold=False)
                self._restarts = 0
            except FunctionUnavailable as exc:
                # Back off like a CrashLoopBackOff: 1, 2, 4 ... 30 s between attempts.
                self._restarts += 1
                self._restart_after = time.monotonic() + min(30.0, 2.0 ** (self._restarts - 1))
                self._console.line(f"{self.name:<14} | {exc}")

    def stop(self) -> None:
        """Stop for good (the runtime is shutting down)."""
        with self._lock:
            self._terminate()
            self._state = "stopped"
            self._changed()
        self._log.close()
        if self._own_tail:
            self._tail.close()

    # --- under self._lock ---------------------------------------------------------------

    def _running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start_if_needed(self) -> bool:
        """Start it unless it runs (scaled to zero, or initial-scale 0: a cold start); True
        if this started it."""
        if self._state == "stopped":
            raise FunctionUnavailable(f"{self.name} is stopped")
        if self._running():
            return False
        self._start(cold=True)
        return True

    def _expire_holds(self, now: float) -> None:
        """Holds whose sender never released them end at their deadline (its last use)."""
        for hold, until in list(self._holds.items()):
            if until <= now:
                del self._holds[hold]
                self._last_used = max(self._last_used, until)

    def _status(self) -> FunctionStatus:
        running = self._running()
        state: State = "running" if running else self._state
        if state == "running" and not running:  # it exited on its own
            state = "scaled_to_zero"
        pid = self._process.pid if running and self._process else None
        return FunctionStatus(self.name, state, self._port, pid, self.spec.min_scale,
                              self._last_cold_start_ms)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self._status())

    def _start(self, *, cold: bool) -> None:
        if self._process is not None:  # it exited on its own: say so, then start it again
            code = self._process.poll()
            self._console.line(f"{self.name:<14} | exited with code {code}; starting it again")
            self._terminate()
        if not port_is_free(self._port):
            if self._fixed_port:
                raise FunctionUnavailable(
                    f"function {self.name}: port {self._port} is in use by another program "
                    "(stop it, or choose another port, e.g. SAGA_API_PORT=8090)")
            self._port = free_port()
        started = time.monotonic()
        log = os.open(self._log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                      0o644)
        try:
            process = self._starter.start(self._arguments(), cwd=self._cwd,
                                          env=self._child_env(), stdout=log)
        finally:
            os.close(log)  # the child has its own copy
        self._process = process
        self._pump = OutputPump(self.name, process, self._log, self._console)
        try:
            self._wait_ready(process, started + self._start_timeout)
        except FunctionUnavailable:
            self._terminate()
            self._state = "scaled_to_zero" if cold else self._state
            raise
        elapsed = time.monotonic() - started
        self._state = "running"
        self._last_used = time.monotonic()
        if cold:
            self._last_cold_start_ms = round(elapsed * 1000, 1)
            doc = ecs_event("saga.cold_start", service=self.name, outcome="success",
                            duration_s=elapsed,
                            message=f"cold start in {elapsed * 1000:.0f} ms")
            self._log.write_doc(doc)
            self._console.ecs(doc)
        else:
            self._console.line(f"{self.name:<14} | up on port {self._port} in "
                               f"{elapsed * 1000:.0f} ms")
        self._changed()

    def _arguments(self) -> list[str]:
        """functions-framework's arguments, as a container's command line gives them."""
        return ["--target", self.spec.target, "--source", self.spec.source,
                "--signature-type", self.spec.signature_type,
                "--host", "127.0.0.1", "--port", str(self._port)]

    def _child_env(self) -> dict[str, str]:
        return {**os.environ, **self.spec.env, **self._env, "PORT": str(self._port),
                "K_SERVICE": self.name, "SAGA_FUNCTION_NAME": self.name,
                # Line by line: each line reaches its file (and the pump) as it is written.
                "PYTHONUNBUFFERED": "1"}

    def _wait_ready(self, process: Child, deadline: float) -> None:
        problem = wait_answering(process, self._port, deadline)
        if problem is not None:
            raise self._unavailable(problem)

    def _unavailable(self, problem: str) -> FunctionUnavailable:
        process, pump = self._process, self._pump
        if pump is None:
            return FunctionUnavailable(f"function {self.name} {problem}")
        if process is not None and process.poll() is not None:
            pump.join(2)  # the child is gone, so its output ends: collect the last lines
        last = pump.last_lines()
        return FunctionUnavailable(f"function {self.name} {problem}; its last output:\n{last}")

    def _terminate(self) -> None:
        process, pump = self._process, self._pump
        self._process = self._pump = None
        if process is not None:
            # gunicorn's graceful stop (SIGTERM) lingers ~2 s over idle keep-alive
            # connections. With nothing in flight there is nothing to drain: its quick
            # stop (SIGINT) ends it in ~0.4 s. The public function may be serving
            # requests that did not come through here, so it always gets SIGTERM.
            quick = self._in_flight == 0 and not self._holds and not self.spec.public
            children.terminate(process, self._stop_grace,
                            first=signal.SIGINT if quick else signal.SIGTERM)
        if pump is not None:
            pump.join(5)
