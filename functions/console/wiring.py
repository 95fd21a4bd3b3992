"""Where the console meets common/'s wiring: the process's resources (common.resources: the
database engine, the unit of work and its outbox, the producer; here also the Kafka clients
of the lag reader), the problem type and its renderer. No other module of the console
names them, so a change to that wiring is a change here. main.py builds ConsoleResources
once; the handlers read and operate through them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, text

from common.db import run_in_transaction
from common.events.catalogue import CONSOLE
from common.kafka import client_config
from common.outbox import Outbox
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
    """common.resources' parts, and the lag reader's Kafka clients, made on first use and
    closed with the rest."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._lag: LagReader | None = None

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
        if lag is not None:
            lag.close()
        super().close(timeout)


def read(resources: Resources, work: Callable[[Connection], T]) -> T:
    """`work` in one read-only transaction on one snapshot: a page made of several
    queries (an order, its events, its effects) never mixes two moments."""
    def snapshot(conn: Connection) -> T:
        conn.execute(_SNAPSHOT)
        return work(conn)
    return run_in_transaction(resources.engine, snapshot)


def operate(resources: Resources, trace: TraceContext,
            work: Callable[[Connection, Outbox], T]) -> T:
    """`work` through the unit of work every writer uses: its events go to the outbox in
    the same transaction and are published after commit (common/unit_of_work.py)."""
    return resources.run_unit_of_work(CONSOLE, lambda uow: work(uow.conn, uow.outbox(trace)))
