"""PostgreSQL for the functions, on psycopg 3 directly: the process's connection pool
(`make_pool`; one per process, held by common.resources, no connection until first use),
`Tx`, one transaction's statements on its connection, `transaction` (runs work in one
transaction, retrying serialization failures and deadlocks; a lost connection drains the
pool), and `is_transient`. Statements are plain SQL strings with %(name)s parameters, run
prepared: parsed and planned once per connection (docs/architecture.md, "Statements")."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from common.settings import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)

Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
Params: TypeAlias = Mapping[str, Any] | Sequence[Any] | None
Row: TypeAlias = tuple[Any, ...]

# Errors a transaction can meet through no fault of its own; it is safe to run it again.
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
# How long a caller waits for a pooled connection: only while one is being opened (the pool
# holds at least THREADS), or while PostgreSQL is unreachable, which then answers 503.
POOL_TIMEOUT_S = 5.0


def make_pool(settings: Settings) -> ConnectionPool[Connection]:
    """A closed pool (open() it) of up to db_pool_size (>= THREADS: one per event in flight)
    plus db_pool_max_overflow connections (the outbox marks' thread, the readiness probe;
    knative/*.yaml size both). Each session gets the statement timeout and UTC (timestamps
    read back compare equal, in JSON too, to the ones written from Python, whatever the
    server's zone), and names its function in pg_stat_activity."""
    return ConnectionPool(
        settings.postgres_url(),
        kwargs={
            "connect_timeout": 5,
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms}"
                       " -c timezone=UTC",
            "application_name": f"saga-{settings.function_name}",
            # None: no prepared statements at all, for a PgBouncer in transaction mode
            # that does not track them (docs/architecture.md, "Statements").
            "prepare_threshold": 5 if settings.db_prepared_statements else None,
        },
        min_size=1, max_size=settings.db_pool_size + settings.db_pool_max_overflow,
        open=False, timeout=POOL_TIMEOUT_S,
        # One thread opens connections in the background; each caller runs its own
        # statements and returns its connection idle, so nothing else needs a worker.
        num_workers=1, name=f"saga-{settings.function_name}",
    )


class Tx:
    """One transaction's statements, on one cursor of its connection. Statements run
    prepared (psycopg prepares them on first use on each connection); callbacks registered
    with after_commit run once the transaction committed, never after a rollback."""

    __slots__ = ("_after_commit", "_cursor", "conn")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._cursor = conn.cursor()
        self._after_commit: list[Callable[[], object]] = []

    def run(self, sql: str, params: Params = None) -> int:
        """Execute; the number of rows it changed (or returned)."""
        cursor = self._cursor.execute(sql, params, prepare=True)
        return cursor.rowcount

    def one(self, sql: str, params: Params = None) -> Row | None:
        """Execute; its first row, or None."""
        return self._cursor.execute(sql, params, prepare=True).fetchone()

    def all(self, sql: str, params: Params = None) -> list[Row]:
        return self._cursor.execute(sql, params, prepare=True).fetchall()

    def many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set (one round trip: psycopg pipelines them)."""
        if len(rows) == 1:
            self._cursor.execute(sql, rows[0], prepare=True)
        elif rows:
            self._cursor.executemany(sql, rows)

    def after_commit(self, callback: Callable[[], object]) -> None:
        self._after_commit.append(callback)

    def committed(self) -> None:
        """Run the after-commit callbacks (transaction() calls it after COMMIT)."""
        for callback in self._after_commit:
            callback()


def transaction(pool: ConnectionPool[Connection], work: Callable[[Tx], T], *,
                attempts: int = 4) -> T:
    """Run `work` in one transaction on a pooled connection, committing when it returns.
    Serialization failures and deadlocks are retried here with a little jitter (they are
    expected under row locks); anything else propagates to the caller. A connection found
    lost (PostgreSQL restarted) drains the pool: its other connections are as dead, and
    each would otherwise fail one more event."""
    for attempt in range(1, attempts + 1):
        try:
            return _once(pool, work)
        except _RETRYABLE:
            if attempt == attempts:
                raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # jitter only, not security
    raise AssertionError("unreachable")


def _once(pool: ConnectionPool[Connection], work: Callable[[Tx], T]) -> T:
    conn = pool.getconn()
    try:
        tx = Tx(conn)
        result = work(tx)
        conn.commit()
    except BaseException as exc:
        _abandon(pool, conn, exc)
        raise
    finally:
        pool.putconn(conn)
    tx.committed()
    return result


def _abandon(pool: ConnectionPool[Connection], conn: Connection, exc: BaseException) -> None:
    """After a failed attempt: roll back if the connection still works; drain the pool if
    it was lost."""
    if conn.broken or conn.closed:
        log.warning("database connection lost (%s): reconnecting the pool",
                    type(exc).__name__)
        pool.drain()
        return
    if conn.pgconn.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        try:
            conn.rollback()
        except psycopg.Error:
            conn.close()  # the pool replaces a closed connection when it comes back


def is_transient(exc: BaseException) -> bool:
    """True for faults a retry may cure: lost connections, no connection within the pool's
    timeout, serialization conflicts, deadlocks, statement timeouts (every
    psycopg.OperationalError)."""
    return isinstance(exc, psycopg.OperationalError)
