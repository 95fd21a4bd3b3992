"""The PostgreSQL of a measurement, owned by the tool rather than by `saga up`, so that it
outlives the stack (the PostgreSQL bound runs on it after the stack is stopped, with
nothing else on the machine's cores) and can be restarted under the stack (chaos).

Embedded (the same EmbeddedPostgres class and settings `saga up` uses, on a fixed port so
a restart comes back where the stack's connections point), or a fresh database on the
server DATABASE_URL names; there a "restart" is every backend of the database terminated.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg

from tools.infra import create_database, drop_database, url_with_database
from tools.infra.embedded_pg import EmbeddedPostgres
from tools.infra.ports import free_port


class BenchDatabase:
    def __init__(self, base_dir: Path | None = None, server_url: str | None = None) -> None:
        given = server_url if server_url is not None else os.environ.get("DATABASE_URL")
        self._server_url = given.replace("postgresql+psycopg://", "postgresql://", 1) \
            if given else None
        # A directory made here is removed on exit (each run's data is ~200 MB); one the
        # caller gave is the caller's (chaos keeps it when a check failed).
        self._own_base = base_dir is None
        self._base = base_dir or Path(tempfile.mkdtemp(prefix="saga-bench-pg-"))
        self._pg: EmbeddedPostgres | None = None
        self._name = f"saga_bench_{secrets.token_hex(4)}"
        self.url = ""

    @property
    def embedded(self) -> bool:
        return self._server_url is None

    @property
    def pid(self) -> int | None:
        return self._pg.pid if self._pg is not None else None

    def __enter__(self) -> Self:
        if self._server_url is None:
            self._pg = EmbeddedPostgres(self._base / "pgdata", port=free_port(),
                                        log_path=self._base / "postgres.log")
            self._pg.start()
            self.url = self._pg.create_database("saga")
        else:
            self.url = create_database(self._server_url, self._name)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._pg is not None:
            self._pg.stop()
        elif self._server_url is not None:
            drop_database(self._server_url, self._name)
        if self._own_base:
            shutil.rmtree(self._base, ignore_errors=True)

    def restart(self) -> str:
        """Stop and start the server (embedded), or drop every connection (given)."""
        if self._pg is not None:
            self._pg.stop()
            self._pg.start()
            return "restarted PostgreSQL (fast shutdown, start on the same port)"
        assert self._server_url is not None
        with psycopg.connect(url_with_database(self._server_url, "postgres"),
                             autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", (self._name,)).fetchone()
        return f"terminated {killed[0] if killed else 0} backend(s) of the given PostgreSQL"
