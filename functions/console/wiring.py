"""Where the console meets common/'s wiring: the process's resources (common.resources: the
connection pool, the unit of work and its outbox, the producer; here also the SQLAlchemy
engine its pages read with, on the same pool, and the lag reader's Kafka clients), the
problem type and its renderer. No other module of the console names them, so a change to
that wiring is a change here. main.py builds ConsoleResources once; the handlers read and
operate through them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool
from sqlalchemy import Connection, Engine, create_engine, event, pool, text
from sqlalchemy.dialects.postgresql.psycopg import _log_notices
from sqlalchemy.exc import DBAPIError

from common.events.catalogue import CONSOLE
from common.kafka import client_config
from common.outbox import Outbox
from common.pg import Connection as PgConnection
from common.pg import Tx, make_pool
from common.problems import Problem, fault
from common.resources import Resources
from common.serving.wsgi import install_probes, problem_response
from common.settings import Settings
from common.tracing import TraceContext
from functions.console.runtime_view import LagReader

__all__ = ["ConsoleResources", "Problem", "fault", "install_probes", "problem_response"]

T = TypeVar("T")
_SNAPSHOT = text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


class ConsoleResources(Resources):
    """common.resources' parts, the pages' engine and the lag reader's Kafka clients, made
    on first use and closed with the rest."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._engine: Engine | None = None
        self._lag: LagReader | None = None

    def _make_pool(self) -> ConnectionPool[PgConnection]:
        # The engine's connections come from the pool and go back to it on close: one
        # pool, sized in knative/console.yaml, for the pages and the operations. Nothing is
        # prepared on them: psycopg's rollback deallocates every prepared statement of a
        # connection where its cursors (the engine's) prepared some, the unit of work's too,
        # and the console's statements are rare enough to be planned each time.
        return make_pool(self.settings.model_copy(update={"db_prepared_statements": False}),
                         close_returns=True)

    @property
    def engine(self) -> Engine:
        """SQLAlchemy on the pool's connections (the pages' queries are SQLAlchemy Core):
        the same sessions, statement timeout and UTC as the operations'."""
        engine = self._engine
        if engine is None:
            connections = self.pool
            with self._lock:
                if self._engine is None:
                    self._engine = _engine_on(connections)
                engine = self._engine
        return engine

    @property
    def lag(self) -> LagReader:
        lag = self._lag
        if lag is None:
            with self._lock:
                if self._lag is None:
                    self._lag = LagReader(client_config(self.settings))
                lag = self._lag
        return lag

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            lag, self._lag = self._lag, None
            engine, self._engine = self._engine, None
        if lag is not None:
            lag.close()
        if engine is not None:
            engine.dispose()
        super().close(timeout)


def _engine_on(connections: ConnectionPool[PgConnection]) -> Engine:
    """An engine that checks a pooled connection out for each of its connections, and
    closes (returns) it after."""
    engine = create_engine("postgresql+psycopg://", poolclass=pool.NullPool,
                           creator=connections.getconn)

    # SQLAlchemy sets up each connection it makes: with NullPool, at every checkout. Its
    # notice handler is all it adds; taken off at checkin, it does not pile up on a pooled
    # connection.
    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: PgConnection, _record: object) -> None:
        with contextlib.suppress(ValueError):
            dbapi_connection.remove_notice_handler(_log_notices)

    return engine


def read(resources: ConsoleResources, work: Callable[[Connection], T]) -> T:
    """`work` in one read-only transaction on one snapshot: a page made of several
    queries (an order, its events, its effects) never mixes two moments."""
    try:
        with resources.engine.begin() as conn:
            conn.execute(_SNAPSHOT)
            return work(conn)
    except DBAPIError as exc:
        # psycopg's own error, as the operations meet it: no connection in time, a lost one
        # or a statement timeout answers 503 (common.problems.fault), anything else 500.
        if isinstance(exc.orig, psycopg.Error):
            raise exc.orig from exc
        raise


def operate(resources: Resources, trace: TraceContext, work: Callable[[Tx, Outbox], T]) -> T:
    """`work` through the unit of work every writer uses: its events go to the outbox in
    the same transaction and are published after commit (common/unit_of_work.py)."""
    return resources.run_unit_of_work(CONSOLE, lambda uow: work(uow.tx, uow.outbox(trace)))
