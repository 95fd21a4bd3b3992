"""Alembic from Python: bring a database to a revision and ask which revision it is at, in
this process against exactly the URL given (the CLI, the local runtime and the tests; the
command line and the cluster's migration Job run the same migrations/env.py, which reads
DATABASE_URL instead). Concurrent migrators of one database are serialised by an advisory
lock in env.py; not several threads of one process (Alembic's `context` and `op` are
process-wide proxies)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

import common
from common.settings import to_sqlalchemy_url
from common.tables import SCHEMAS

__all__ = [
    "DATABASE_URL_ATTRIBUTE",
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "VERSION_TABLE_SCHEMA",
    "alembic_config",
    "current_revision",
    "downgrade",
    "include_name",
    "upgrade",
]

# The checkout (or installed tree) holds migrations/ next to the common package.
MIGRATIONS_DIR = Path(common.__file__).resolve().parent.parent / "migrations"

# Key of Config.attributes under which env.py finds the SQLAlchemy URL. Attributes live only
# in memory, so the URL (and any password in it) is never written to an ini file.
DATABASE_URL_ATTRIBUTE = "database_url"

# Alembic's bookkeeping table. Pinned to "public" rather than left to search_path, so that a
# role whose search_path starts with one of our schemas cannot put it somewhere else, and so
# that dropping our schemas on downgrade never takes the version table with them. Since
# PostgreSQL 15 only the database owner may create in public by default, so the migrating
# role should own the database (it needs CREATE on it for CREATE SCHEMA anyway).
VERSION_TABLE = "alembic_version"
VERSION_TABLE_SCHEMA = "public"


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic `include_name` hook: only our schemas take part in comparisons.

    With include_schemas=True autogenerate would otherwise reflect every schema in the
    database (public with alembic_version, anything another tool put there) and propose to
    drop what it finds. The default schema is reported as None and is not ours either.
    """
    if type_ == "schema":
        return name in SCHEMAS
    return True


def alembic_config(database_url: str) -> Config:
    """An Alembic Config for `database_url` (postgresql://...) that runs migrations/.

    alembic.ini is deliberately not read: it is the command line's configuration, and
    loading it here would apply its `prepend_sys_path` to this process's sys.path on every
    call and its logging section would be tempting to apply. Only script_location matters
    for running migrations, and it is resolved from the package, not the working directory.
    """
    config = Config()
    # configparser treats % as interpolation; a checkout path may contain one.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes[DATABASE_URL_ATTRIBUTE] = to_sqlalchemy_url(database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision` (default: the newest)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrate the database down to `revision` (default: nothing of ours left)."""
    command.downgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None if it was never migrated or is at base.

    Raises if the database has several heads (a branched history applied), which this
    project's linear history should never produce.
    """
    # NullPool and dispose: nothing may outlive the call, or a test's DROP DATABASE (or a
    # scale-to-zero function) would find a stray idle connection.
    engine = create_engine(to_sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"version_table": VERSION_TABLE, "version_table_schema": VERSION_TABLE_SCHEMA},
            )
            return context.get_current_revision()
    finally:
        engine.dispose()
