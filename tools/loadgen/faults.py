"""The faults `saga chaos` injects, each logged with its time:

- Killer: every `every_s`, SIGKILL to a random running function's process group (the
  function's process; the api's gunicorn master and worker: a crashed container). The
  runtime starts it again on its next event (or at once, for the api, min-scale 1).
- a PostgreSQL restart (database.BenchDatabase.restart).
- ChaosBroker: the Tansu broker behind a TcpProxy (advertised on the proxy's port), so its
  connections can be cut without the in-memory broker losing its messages.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tools.infra.embedded_kafka import broker_binary
from tools.infra.ports import free_port, stop_process
from tools.loadgen.tcpproxy import TcpProxy


@dataclass
class FaultLog:
    started: float = field(default_factory=time.monotonic)
    entries: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str) -> None:
        with self.lock:
            self.entries.append((round(time.monotonic() - self.started, 1), what))

    def as_list(self) -> list[str]:
        with self.lock:
            return [f"+{t:.1f}s {what}" for t, what in self.entries]


class Killer:
    def __init__(self, pids: Callable[[], dict[str, int]], log: FaultLog, *, every_s: float,
                 seed: int = 11, spare: frozenset[str] = frozenset()) -> None:
        self._pids, self._log, self._every = pids, log, every_s
        self._random = random.Random(seed)
        self._spare = spare
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="killer", daemon=True)
        self.kills: dict[str, int] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def kill_one(self) -> str | None:
        running = {n: p for n, p in self._pids().items() if n not in self._spare}
        if not running:
            return None
        name = self._random.choice(sorted(running))
        try:
            os.killpg(running[name], signal.SIGKILL)  # each function has its own group
        except ProcessLookupError:
            return None  # it stopped on its own (scale to zero) since the listing
        self.kills[name] = self.kills.get(name, 0) + 1
        self._log.add(f"SIGKILL {name} (pid {running[name]})")
        return name

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.kill_one()


class ChaosBroker:
    """Tansu (memory storage) on a private port, reachable only through the proxy."""

    def __init__(self, log_path: Path) -> None:
        self._broker_port, self.port = free_port(), free_port()
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.proxy = TcpProxy(self.port, self._broker_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        listen = f"tcp://127.0.0.1:{self._broker_port}"
        advertised = f"tcp://127.0.0.1:{self.port}"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [broker_binary(), "broker", "--listener-url", listen,
                 "--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=os.environ | {"NO_COLOR": "1"}, start_new_session=True)
        self.proxy.start()
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        deadline = time.monotonic() + 30
        while True:
            try:
                admin.list_topics(timeout=1)
                return self
            except KafkaException:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.__exit__(None, None, None)
                    raise RuntimeError("the chaos broker did not start") from None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.proxy.stop()
        if self._process is not None and self._process.poll() is None:
            stop_process(self._process.pid, [(signal.SIGTERM, 1.0)], what="chaos broker")
            self._process.wait()

    def cut(self, seconds: float, log: FaultLog) -> None:
        log.add(f"broker connections cut for {seconds:.0f} s")
        self.proxy.cut(seconds)
        log.add("broker reachable again")
