"""Where the console meets common/'s wiring: the database engine, the unit of work and its
outbox, the Kafka client configuration and the problem type. No other module of the
console names them, so a change to that wiring is a change here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, text

from common.db import get_engine, is_transient, run_in_transaction
from common.events.catalogue import CONSOLE
from common.kafka import client_config
from common.outbox import Outbox
from common.problems import Problem, problem_response
from common.settings import Settings
from common.tracing import TraceContext
from common.unit_of_work import run_unit_of_work

__all__ = ["Problem", "is_transient", "problem_response"]

T = TypeVar("T")
_SNAPSHOT = text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def read(settings: Settings, work: Callable[[Connection], T]) -> T:
    """`work` in one read-only transaction on one snapshot: a page made of several
    queries (an order, its events, its effects) never mixes two moments."""
    def snapshot(conn: Connection) -> T:
        conn.execute(_SNAPSHOT)
        return work(conn)
    return run_in_transaction(get_engine(settings), snapshot)


def operate(settings: Settings, trace: TraceContext,
            work: Callable[[Connection, Outbox], T]) -> T:
    """`work` through the unit of work every writer uses: its events go to the outbox in
    the same transaction and are published after commit (common/unit_of_work.py)."""
    return run_unit_of_work(settings, CONSOLE, lambda uow: work(uow.conn, uow.outbox(trace)))


def kafka_config(settings: Settings) -> dict[str, Any]:
    return client_config(settings)
