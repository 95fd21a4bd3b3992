"""The console's one pool: its pages' SQLAlchemy engine and its operations' unit of work
take their connections from the same psycopg pool (the manifest's budget is one pool's),
give them back, and leave nothing of SQLAlchemy's set-up piling up on them."""

from __future__ import annotations

import logging

import psycopg
import pytest
from sqlalchemy import text

from common.problems import fault_status
from common.settings import Settings
from functions.console.wiring import ConsoleResources, read
from tools.infra.ports import LOOPBACK, free_port

pytestmark = pytest.mark.integration


def test_reads_and_operations_share_one_connection_and_log_a_notice_once(
        migrated_database: str, caplog: pytest.LogCaptureFixture) -> None:
    resources = ConsoleResources(Settings(DATABASE_URL=migrated_database, db_pool_size=1,
                                          db_pool_max_overflow=0))
    try:
        for _ in range(20):
            assert read(resources, lambda conn: conn.execute(text("SELECT 1")).scalar()) == 1
            assert resources.transaction(lambda tx: tx.one("SELECT 2")) == (2,)
        stats = resources.pool.get_stats()
        assert (stats["pool_size"], stats["pool_available"]) == (1, 1), stats
        with caplog.at_level(logging.INFO, logger="sqlalchemy.dialects.postgresql"):
            read(resources, lambda conn: conn.execute(text(
                "DO $$ BEGIN RAISE NOTICE 'console-pool-check'; END $$")))
        logged = [r for r in caplog.records if "console-pool-check" in r.getMessage()]
        assert len(logged) == 1, f"one notice logged {len(logged)} times"
    finally:
        resources.close()


def test_a_page_without_its_database_answers_503_as_an_operation_does() -> None:
    """The pages' errors are psycopg's, as the unit of work's are (SQLAlchemy wraps them):
    no connection in time is a retry's to cure, 503, not 500."""
    nowhere = f"postgresql://saga@{LOOPBACK}:{free_port()}/saga"
    resources = ConsoleResources(Settings(DATABASE_URL=nowhere))
    try:
        with pytest.raises(psycopg.OperationalError) as raised:
            read(resources, lambda conn: conn.execute(text("SELECT 1")).scalar())
        assert fault_status(raised.value) == 503
    finally:
        resources.close(timeout=1.0)
