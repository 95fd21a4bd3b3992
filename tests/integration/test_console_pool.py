"""The console's one pool: its pages' SQLAlchemy engine and its operations' unit of work
take their connections from the same psycopg pool (the manifest's budget is one pool's),
give them back, and leave nothing of SQLAlchemy's set-up piling up on them."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from common.settings import Settings
from functions.console.wiring import ConsoleResources, read

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
