"""The faults `saga chaos` injects, each logged with its time:

- Killer: every `every_s`, SIGKILL to a random running function's process group (the
  function's process; the api's gunicorn master and worker: a crashed container). The
  runtime starts it again on its next event (or at once, for the api, min-scale 1).
- a PostgreSQL restart (database.BenchDatabase.restart).
- ChaosBroker: the broker (Tansu, or Apache Kafka) behind a TcpProxy (advertised on the
  proxy's port), so its connections can be cut without the broker losing its messages.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from tools.infra.apache_kafka import KafkaServer
from tools.infra.ports import free_port
from tools.infra.server import BrokerServer
from tools.infra.tansu import TansuBroker
from tools.loadgen.tcpproxy import TcpProxy
from tools.settings import KafkaBrokerKind


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
    """A broker on a private port, reachable only through the proxy: Tansu (memory
    storage) or Apache Kafka (its logs in `work_dir`/kafka). Its log: `work_dir`/broker.log."""

    def __init__(self, work_dir: Path, kind: KafkaBrokerKind = "tansu") -> None:
        self.kind = kind
        self.port = free_port()
        broker_port = free_port()
        log = work_dir / "broker.log"
        self.server: BrokerServer = (
            KafkaServer(work_dir / "kafka", port=broker_port, log_path=log,
                        advertised_port=self.port) if kind == "kafka"
            else TansuBroker(port=broker_port, log_path=log, advertised_port=self.port))
        self.proxy = TcpProxy(self.port, broker_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.server.start()
        try:
            self.proxy.start()
        except BaseException:
            self.server.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.proxy.stop()
        self.server.stop()

    def cut(self, seconds: float, log: FaultLog) -> None:
        log.add(f"broker connections cut for {seconds:.0f} s")
        self.proxy.cut(seconds)
        log.add("broker reachable again")
