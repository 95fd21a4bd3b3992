"""PostgreSQL for the functions, on psycopg 3 directly: the process's connection pool
(`make_pool`; one per process, held by common.resources, no connection until first use),
`Tx`, one transaction's statements on its connection, `transaction` (runs work in one
transaction, retrying serialization failures and deadlocks; a lost connection drains the
pool), and `is_transient`. Statements are plain SQL strings with %(name)s parameters, run
prepared: parsed and planned once per connection (docs/architecture.md, "Statements")."""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg import abc as pg_abc
from psycopg import errors as pg_errors
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ConnStatus, ExecStatus, TransactionStatus
from psycopg.pq.abc import PGconn, PGresult
from psycopg_pool import ConnectionPool

from common.settings import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)

Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
Params: TypeAlias = Mapping[str, Any] | None
Row: TypeAlias = tuple[Any, ...]

# Errors a transaction can meet through no fault of its own; it is safe to run it again (a
# statement the server forgot, DEALLOCATE ALL or DISCARD ALL by a pooler, is prepared again).
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected,
              pg_errors.InvalidSqlStatementName)
# How long a caller waits for a pooled connection: only while one is being opened (the pool
# holds at least THREADS), or while PostgreSQL is unreachable, which then answers 503.
POOL_TIMEOUT_S = 5.0


def make_pool(settings: Settings, *, close_returns: bool = False
              ) -> ConnectionPool[Connection]:
    """A closed pool (open() it) of up to db_pool_size (>= THREADS: one per event in flight)
    plus db_pool_max_overflow connections (the outbox marks' thread, the readiness probe;
    knative/*.yaml size both). Each session gets the statement timeout and UTC (timestamps
    read back compare equal, in JSON too, to the ones written from Python, whatever the
    server's zone), and names its function in pg_stat_activity. `close_returns`: close() on
    a pooled connection returns it (a SQLAlchemy engine on the pool, as the console's)."""
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
        num_workers=1, name=f"saga-{settings.function_name}", close_returns=close_returns,
    )


class Tx:
    """One transaction's statements on its connection (`transaction` sends BEGIN before the
    first statement and COMMIT after the work). Each statement runs prepared, PREPAREd on
    the connection the first time it runs there, straight through psycopg's libpq wrapper
    (`psycopg.pq`) and the connection's adapters: psycopg's cursor does the same with far
    more interpreter work per statement. Callbacks registered with after_commit run once
    the transaction committed, never after a rollback."""

    __slots__ = ("_after_commit", "_pg", "_session", "conn")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._pg = conn.pgconn
        self._session = _session_of(conn)
        self._after_commit: list[Callable[[], object]] = []

    def run(self, sql: str, params: Params = None) -> int:
        """Execute; the number of rows it changed (or returned)."""
        return self._execute(sql, params).command_tuples or 0

    def one(self, sql: str, params: Params = None) -> Row | None:
        """Execute; its first row, or None."""
        result = self._execute(sql, params)
        if not result.ntuples:
            return None
        loader = self._session.transformer
        loader.set_pgresult(result)
        return loader.load_row(0, tuple)

    def all(self, sql: str, params: Params = None) -> list[Row]:
        result = self._execute(sql, params)
        loader = self._session.transformer
        loader.set_pgresult(result)
        rows: list[Row] = loader.load_rows(0, result.ntuples, tuple)
        return rows

    def many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set (a round trip each)."""
        for params in rows:
            self._execute(sql, params)

    def after_commit(self, callback: Callable[[], object]) -> None:
        self._after_commit.append(callback)

    def committed(self) -> None:
        """Run the after-commit callbacks (transaction() calls it after COMMIT)."""
        for callback in self._after_commit:
            callback()

    def _execute(self, sql: str, params: Params) -> PGresult:
        statement = _STATEMENTS.get(sql) or compile_statement(sql)
        session, pg = self._session, self._pg
        if statement.names:
            if params is None:
                raise TypeError(f"the statement needs parameters {statement.names}")
            values = session.transformer.dump_sequence(
                [params[name] for name in statement.names], statement.formats)
        else:
            values = []
        if pg.transaction_status == TransactionStatus.IDLE:
            _check(pg.exec_(b"BEGIN"), pg, session)
        if not session.prepare:
            return _check(pg.exec_params(statement.text, values), pg, session)
        if statement.name not in session.prepared:
            _check(pg.prepare(statement.name, statement.text), pg, session)
            session.prepared.add(statement.name)
        # None is NULL here as in exec_params (psycopg types it more narrowly).
        prepared = pg.exec_prepared(statement.name, values)  # type: ignore[arg-type]
        return _check(prepared, pg, session)


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement as libpq takes it: $n parameters, in the order of `names`, each sent
    untyped (PostgreSQL infers its type from the statement, as a PREPARE without types)."""

    name: bytes  # of its prepared statement: the same on every connection and process
    text: bytes
    names: tuple[str, ...]
    formats: tuple[PyFormat, ...]


_STATEMENTS: dict[str, Statement] = {}
_PARAMETER = re.compile(r"%\((\w+)\)s")


def compile_statement(sql: str) -> Statement:
    """`sql` with %(name)s parameters (one $n per name, %% as %), compiled once a process."""
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${numbers.setdefault(match.group(1), len(numbers) + 1)}"

    text = _PARAMETER.sub(number, sql).replace("%%", "%")
    digest = hashlib.sha256(sql.encode()).hexdigest()[:16]
    statement = Statement(f"saga_{digest}".encode(), text.encode(), tuple(numbers),
                          (PyFormat.TEXT,) * len(numbers))
    _STATEMENTS[sql] = statement  # a race only compiles a statement twice
    return statement


@dataclass(slots=True)
class _Session:
    """What one connection remembers across transactions: the statements prepared on it
    (a rollback keeps them; they go with the connection), and its adapters."""

    transformer: pg_abc.Transformer
    encoding: str
    prepare: bool
    prepared: set[bytes] = field(default_factory=set)


_sessions: weakref.WeakKeyDictionary[Connection, _Session] = weakref.WeakKeyDictionary()


def _session_of(conn: Connection) -> _Session:
    session = _sessions.get(conn)
    if session is None:
        session = _sessions[conn] = _Session(Transformer(conn), conn.info.encoding,
                                             prepare=conn.prepare_threshold is not None)
    return session


def _check(result: PGresult, pg: PGconn, session: _Session) -> PGresult:
    """`result`, unless it failed: then psycopg's error for it (a lost connection is an
    OperationalError, as psycopg's own cursors raise it)."""
    if result.status in (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK):
        return result
    if pg.status == ConnStatus.BAD:
        message = (result.error_message or pg.error_message).decode(session.encoding, "replace")
        raise psycopg.OperationalError(message.strip() or "the connection was lost")
    error = pg_errors.error_from_result(result, encoding=session.encoding)
    if isinstance(error, pg_errors.InvalidSqlStatementName):
        session.prepared.clear()  # the server forgot them (a pooler's reset): prepare again
    raise error


def transaction(pool: ConnectionPool[Connection], work: Callable[[Tx], T], *,
                attempts: int = 4) -> T:
    """Run `work` in one transaction on a pooled connection, committing when it returns.
    Serialization failures, deadlocks and forgotten prepared statements are retried here
    with a little jitter (the first two are expected under row locks); anything else
    propagates to the caller. A connection found lost (PostgreSQL restarted) drains the
    pool: its other connections are as dead, and each would otherwise fail one more event."""
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
        if conn.pgconn.transaction_status != TransactionStatus.IDLE:
            committed = _check(conn.pgconn.exec_(b"COMMIT"), conn.pgconn, tx._session)
            if committed.command_status != b"COMMIT":  # a failed transaction: ROLLBACK
                raise pg_errors.InFailedSqlTransaction("the transaction was rolled back")
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
        except psycopg.Error as rollback_failed:
            # Coming back, it is rolled back again by the pool, or discarded and replaced.
            log.warning("rollback failed: %s", rollback_failed)


def tx_in(connection: Any) -> Tx:
    """The Tx of a SQLAlchemy Connection's transaction on psycopg: the tools and the
    console's pages, which read with SQLAlchemy, run common's statements in it."""
    return Tx(connection.connection.driver_connection)


def is_transient(exc: BaseException) -> bool:
    """True for faults a retry may cure: lost connections, no connection within the pool's
    timeout, serialization conflicts, deadlocks, statement timeouts (every
    psycopg.OperationalError)."""
    return isinstance(exc, psycopg.OperationalError)
