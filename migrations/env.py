"""Alembic environment: where the URL comes from and how migrations are run.

Two ways in:
- common.migrate (the CLI, the local runtime, tests) passes the URL in
  `config.attributes["database_url"]` and configures logging itself;
- the `alembic` command line and the Kubernetes migration Job read DATABASE_URL through
  common.settings, and logging comes from alembic.ini.
"""

from __future__ import annotations

import time
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text

from common.migrate import (
    DATABASE_URL_ATTRIBUTE,
    VERSION_TABLE,
    VERSION_TABLE_SCHEMA,
    include_name,
)
from common.settings import get_settings
from common.tables import metadata

config = context.config

# Only for comparisons (the migration test, future `alembic revision --autogenerate`):
# revisions themselves never import common.tables.
target_metadata = metadata

# Any constant shared by every migrator of this database; pg_advisory_xact_lock takes a
# bigint. ASCII "sagamigr".
MIGRATION_LOCK_KEY = 0x736167616D696772

_programmatic_url: str | None = config.attributes.get(DATABASE_URL_ATTRIBUTE)

# fileConfig replaces the process's logging setup, which is right for the `alembic` command
# and wrong inside the local runtime or pytest; disable_existing_loggers=False so loggers
# created before this point (e.g. by common.settings' imports) keep working.
if _programmatic_url is None and config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _configure(**mode_options: Any) -> None:
    """context.configure with what both modes share (and autogenerate relies on)."""
    context.configure(
        target_metadata=target_metadata,
        include_schemas=True,
        include_name=include_name,
        version_table=VERSION_TABLE,
        version_table_schema=VERSION_TABLE_SCHEMA,
        **mode_options,
    )


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it.

    Offline mode never connects, so it needs only the dialect, not DATABASE_URL: a DBA can
    render the script on a machine with no access to the database.
    """
    _configure(dialect_name="postgresql", literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _take_migration_lock(lock: Connection) -> None:
    """Serialise concurrent migrators (the local runtime and a Job, two Jobs of a rollout):
    the second waits, then reads the version table the first committed and finds nothing to
    do instead of failing halfway through CREATE SCHEMA.

    A session's advisory lock on a connection of its own, held until it closes: a revision
    that builds an index CONCURRENTLY commits in its middle (an autocommit block), where a
    transaction's lock would end. Taken by polling outside any transaction: a migrator
    blocked in pg_advisory_lock() holds a snapshot, which the other's CREATE INDEX
    CONCURRENTLY waits for (a deadlock, seen in test_concurrent_upgrades_wait_for_each_other).
    """
    lock.execution_options(isolation_level="AUTOCOMMIT")
    while not lock.execute(text("SELECT pg_try_advisory_lock(:key)"),
                           {"key": MIGRATION_LOCK_KEY}).scalar_one():
        time.sleep(0.2)  # until the other migrator is done (an index build may take minutes)


def run_migrations_online() -> None:
    url = _programmatic_url or get_settings().sqlalchemy_url()
    # NullPool: a migration's two connections are used once; nothing should linger after.
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as lock, engine.connect() as connection:
            _take_migration_lock(lock)
            _configure(connection=connection)
            # PostgreSQL runs all pending revisions in one transaction (transactional DDL),
            # but for such autocommit blocks.
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
