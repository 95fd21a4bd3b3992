"""The database engine of a process and its transactions: `make_engine` (no connection
until first use; one per process, held by common.resources), `run_in_transaction` (retries
serialization failures and deadlocks) and `is_transient` (what a retry may cure)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from psycopg import errors as pg_errors
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError

from common.settings import Settings

T = TypeVar("T")

# Errors a transaction can meet through no fault of its own; it is safe to run it again.
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


def make_engine(settings: Settings) -> Engine:
    """An engine whose pool is sized by settings.db_pool_size (>= THREADS)."""
    return create_engine(
        settings.sqlalchemy_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_max_overflow,
        pool_timeout=10,
        # A dropped connection (database restart) is detected on use, invalidates the pool
        # and fails that one step with 5xx; the KafkaSource retries it.
        pool_pre_ping=False,
        connect_args={
            "connect_timeout": 5,
            # UTC sessions: timestamps read back compare equal, in JSON too, to the ones
            # written from Python (utc_now), whatever the server's zone.
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms}"
                       " -c timezone=UTC",
            "application_name": f"saga-{settings.function_name}",
        },
    )


def is_transient(exc: BaseException) -> bool:
    """True for faults a retry may cure: lost connections, serialization conflicts."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError):
        return isinstance(exc.orig, _RETRYABLE) or bool(exc.connection_invalidated)
    return False


def _is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and isinstance(exc.orig, _RETRYABLE)


def run_in_transaction(
    engine: Engine, work: Callable[[Connection], T], *, attempts: int = 4
) -> T:
    """Run `work` in one transaction, committing when it returns. Serialization failures
    and deadlocks are retried here with a little jitter (they are expected under row
    locks); anything else propagates to the caller."""
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                return work(conn)
        except DBAPIError as exc:
            if attempt == attempts or not _is_conflict(exc):
                raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # jitter only, not security
    raise AssertionError("unreachable")
