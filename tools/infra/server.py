"""What the embedded servers (PostgreSQL, the Tansu broker, Apache Kafka) have in common: a
child process of ours on a loopback port, started and waited for with a deadline, stopped
politely then firmly, and its log's last lines in every error.

A subclass says how to spawn the server on a port (`_spawn`, through `_launch`), how to
tell it is ready (`_ready`), how its log says the port was taken (`_port_taken`: start()
then retries on a new port, since another process may bind a port between our choosing it
and the server binding it), and how to stop it (`_stop_steps`).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tools.infra import ports
from tools.infra.ports import LOOPBACK, log_size, log_tail

logger = logging.getLogger(__name__)

POLL_S = 0.02  # readiness poll interval; the wait itself is bounded by a deadline
StopSteps = Sequence[tuple[signal.Signals, float]]


class ServerError(RuntimeError):
    """An embedded server could not be prepared, started or stopped."""


class ChildServer:
    """One server process on 127.0.0.1, owned by us (see the module docstring)."""

    what: ClassVar[str] = "server"  # in messages: "the embedded broker exited ..."
    # True where the stop steps' grace is shorter than the server's own shutdown on
    # purpose (nothing to flush): its kill after them is the normal stop, not a warning.
    killed_when_stopped: ClassVar[bool] = False
    error: ClassVar[type[ServerError]] = ServerError
    attempts: ClassVar[int] = 3  # ports tried when we pick them

    def __init__(self, port: int | None, log_path: Path | None) -> None:
        self._wanted_port = port
        self._log_path = Path(log_path).absolute() if log_path is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    # --- the face ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """Port of the running server (after stop(): of the last one)."""
        if self._port is None:
            raise self.error(f"the {self.what} has not been started")
        return self._port

    @property
    def address(self) -> str:
        """What a client connects to (a URL, a bootstrap address)."""
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
        """Start the server and wait until it is ready; its address. Stops what it started
        if anything fails (also Ctrl-C)."""
        if self.pid is not None:
            return self.address
        try:
            self._install()
            deadline = time.monotonic() + timeout
            if self._prepare(deadline):
                return self.address
            started_at = 0
            for _attempt in range(self.attempts):
                started_at = self._spawn(self._wanted_port or ports.free_port())
                if self._wait_ready(deadline, started_at):
                    return self.address
                if self._wanted_port is not None:
                    break
            raise self.error(f"the {self.what} could not bind its port\n"
                             f"{self._tail(started_at)}")
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server we started (`_stop_steps`, then SIGKILL); idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            ports.stop_process(proc.pid, self._stop_steps(timeout), what=self.what,
                               warn=not self.killed_when_stopped)
            proc.wait()  # already reaped by stop_process; keeps Popen's bookkeeping right
        self._stopped()

    # --- for subclasses ---------------------------------------------------------------

    def _install(self) -> None:
        """What must be there before the server can start at all, outside the start's
        deadline (a first-time download)."""

    def _prepare(self, deadline: float) -> bool:
        """Before spawning (directories, first-time setup). True when a running server was
        adopted instead, so start() returns at once."""
        return False

    def _spawn(self, port: int) -> int:
        """Start the server on `port` (with `_launch`); the log offset its output starts at."""
        raise NotImplementedError

    def _ready(self, timeout: float) -> bool:
        """Whether the server answers now (waiting at most `timeout` seconds)."""
        raise NotImplementedError

    def _port_taken(self, log: str) -> bool:
        """Whether the log of a server that exited while starting says its port was taken."""
        return "address already in use" in log.lower()

    def _stop_steps(self, timeout: float | None) -> StopSteps:
        return [(signal.SIGTERM, 5.0 if timeout is None else timeout)]

    def _stopped(self) -> None:
        """After stop(): clean up what start() made (temporary directories)."""

    def _launch(self, command: list[str], *, port: int, env: Mapping[str, str] | None = None,
                die_with_parent: bool = False, **popen: Any) -> int:
        """Spawn `command`, its output appended to the log, in a session of its own (a
        terminal's Ctrl-C reaches us, and we stop it in order); the log offset it starts at.

        `die_with_parent` (Linux, needs `setpriv`): the kernel SIGKILLs the server when the
        thread that started it ends, so a crashed (SIGKILLed) parent leaves no server
        behind. That is the starting *thread*: start it from one that lives as long as the
        server is needed. Never for a server that must not be SIGKILLed (PostgreSQL).
        """
        setpriv = shutil.which("setpriv") if sys.platform == "linux" else None
        if die_with_parent and setpriv:
            # prctl(PR_SET_PDEATHSIG) via util-linux rather than a preexec_fn, which is
            # unsafe in a process with threads (librdkafka's, the runtime's).
            command = [setpriv, "--pdeathsig", "KILL", "--", *command]
        started_at = log_size(self._log_path) if self._log_path is not None else 0
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with (self._log_path.open("ab") if self._log_path is not None
              else open(os.devnull, "wb")) as log:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None, start_new_session=True, **popen)
        self._port = port
        return started_at

    def _wait_ready(self, deadline: float, started_at: int) -> bool:
        """True once the server is ready; False if it exited because its port was taken
        (the caller may retry); raises on other failures and at the deadline."""
        while True:
            proc = self._proc
            if proc is not None and proc.poll() is not None:
                tail = self._tail(started_at)
                if self._port_taken(tail):
                    return False
                raise self.error(f"the {self.what} exited with code {proc.returncode} while "
                                 f"starting\n{tail}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.error(f"the {self.what} did not answer on port {self._port} in "
                                 f"time\n{self._tail(started_at)}")
            if self._ready(min(remaining, 2.0)):
                return True
            time.sleep(POLL_S)

    def _tail(self, started_at: int) -> str:
        if self._log_path is None:
            return f"(no log of the {self.what}: pass log_path to keep one)"
        return log_tail(self._log_path, start=started_at)


class BrokerServer(ChildServer):
    """A Kafka-protocol broker: ready once it answers a metadata request. A TCP connect
    comes first so librdkafka does not log refused connections while it starts."""

    what = "embedded broker"

    def __init__(self, port: int | None, log_path: Path | None) -> None:
        super().__init__(port, log_path)
        self._admin: AdminClient | None = None

    @property
    def bootstrap(self) -> str:
        return self.address

    def _ready(self, timeout: float) -> bool:
        if self._admin is None:
            if not ports.accepts_connections(self.port, timeout=min(timeout, 0.5)):
                return False
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            metadata = self._admin.list_topics(timeout=min(timeout, 0.5))
        except KafkaException:
            return False  # listening but not answering yet
        return bool(metadata.brokers)

    def _spawn(self, port: int) -> int:
        self._admin = None  # a new process, perhaps on a new port
        return self._spawn_broker(port)

    def _spawn_broker(self, port: int) -> int:
        raise NotImplementedError

    def _stopped(self) -> None:
        self._admin = None
