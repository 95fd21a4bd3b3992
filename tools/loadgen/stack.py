"""A local stack for a measurement: a `saga up` process of our own (fresh state directory,
free port, its own JWT secret, embedded PostgreSQL and broker unless given; the broker
Tansu or, with `broker="kafka"`, Apache Kafka), or the one already running in
SAGA_STATE_DIR.

Our own stack is stopped with SIGINT (Ctrl-C), as a person stops `./taskw up`, so it shuts
down in order and leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil

from tools import REPO_ROOT
from tools.infra.ports import free_port
from tools.loadgen.target import Target
from tools.progress import Progress
from tools.runtime.state import read_state
from tools.settings import EmbeddedBroker, LocalSettings

BROKER_PROCESSES = frozenset({"setpriv", "java"})  # setpriv until it has exec'd the broker


class StackError(RuntimeError):
    pass


class LocalStack:
    def __init__(self, *, env: Mapping[str, str] | None = None, state_dir: Path | None = None,
                 start_timeout_s: float = 120.0, broker: EmbeddedBroker | None = None,
                 progress: Progress | None = None, phase: str = "") -> None:
        self._own_state_dir = state_dir is None  # removed on exit, as BenchDatabase's
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="saga-bench-"))
        self.port = free_port()
        self.secret = secrets.token_urlsafe(32)
        self._extra_env = dict(env or {}) | ({"SAGA_BROKER": broker} if broker else {})
        self._timeout = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.output = self.state_dir / "saga-up.log"
        self._progress = progress or Progress.silent()
        self._named = f"{phase}: " if phase else ""  # in the progress: run 2/3, say

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def start(self) -> Target:
        env = dict(os.environ) | {
            "SAGA_STATE_DIR": str(self.state_dir), "SAGA_API_PORT": str(self.port),
            "SAGA_JWT_SECRET": self.secret, "SAGA_PROFILE": "local"} | self._extra_env
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tools.cli.main", "up"], cwd=REPO_ROOT, env=env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self._timeout
        with self._progress.task(f"{self._named}starting a stack (saga up, console: "
                                 f"{self.output})"):
            while not _healthy(self.api_url):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = self.output.read_text(errors="replace")[-3000:]
                    self.stop()
                    raise StackError(f"saga up did not become healthy:\n{tail}")
                time.sleep(0.2)  # waiting for the stack's start, bounded by the deadline
        return self.target()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def target(self) -> Target:
        state = read_state(self.state_dir) or {}
        url = self._extra_env.get("DATABASE_URL") or state.get("database_url")
        if not url:
            raise StackError("the stack wrote no database URL")
        settings = LocalSettings(jwt_secret=self.secret, state_dir=self.state_dir)
        return Target(self.api_url, str(url), settings, self.state_dir)

    def stop(self, timeout_s: float = 90.0) -> int | None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGINT)
        with self._progress.task(f"{self._named}stopping the stack (Ctrl-C, as a person "
                                 "would)"):
            try:
                return process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                return process.wait(10)


def roots(state_dir: Path) -> dict[str, int]:
    """name -> pid of every process of the stack: the runtime, each function (its process;
    the api's gunicorn master, whose worker procstats finds), the embedded PostgreSQL and
    broker (Tansu, or Apache Kafka's JVM: `setpriv` execs either, keeping its pid)."""
    state = read_state(state_dir) or {}
    found = {name: f["pid"] for name, f in (state.get("functions") or {}).items()
             if f.get("pid")}
    if state.get("pid") and state.get("phase") == "running":
        found["runtime"] = int(state["pid"])
        try:
            for child in psutil.Process(int(state["pid"])).children():
                name = child.name()
                if name == "postgres":
                    found["postgres"] = child.pid
                elif name in BROKER_PROCESSES or "tansu" in name:
                    found["broker"] = child.pid
        except psutil.Error:
            pass
    return found


def function_pids(state_dir: Path) -> dict[str, int]:
    """The running functions' processes (the api's gunicorn master: SIGKILL it, and its
    process group takes its worker with it)."""
    state = read_state(state_dir) or {}
    return {name: f["pid"] for name, f in (state.get("functions") or {}).items()
            if f.get("pid") and f.get("state") == "running"}


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False
