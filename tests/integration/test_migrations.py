"""The Alembic migrations against a real PostgreSQL.

The migrated database must be exactly what common.tables describes. Two complementary
checks hold them to each other:
- Alembic's own compare_metadata (what a future `alembic revision --autogenerate` would
  propose), which covers tables, columns, types, defaults, keys, unique constraints and
  indexes, but ignores CHECK constraints and partial-index predicates;
- a comparison of the PostgreSQL catalogue of the migrated database with that of a second
  database built by metadata.create_all(), which sees everything the server stores,
  normalised by the server itself (pg_get_constraintdef, pg_indexes.indexdef, ...).
"""

from __future__ import annotations

import configparser
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg.errors
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, pool, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateSchema

from common.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    downgrade,
    include_name,
    upgrade,
)
from common.settings import to_sqlalchemy_url
from common.tables import SCHEMAS, metadata

pytestmark = pytest.mark.integration

REPO_ROOT = MIGRATIONS_DIR.parent


def _engine(url: str) -> Engine:
    # NullPool: every connection is closed on release, so the session-end DROP DATABASE
    # never waits on (or kills) an idle connection of these tests.
    return create_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)


@pytest.fixture(scope="module")
def head() -> str:
    """The newest revision, read from the scripts so that adding one needs no test edit."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    assert head is not None
    return head


@pytest.fixture(scope="module")
def migrated_engine(migrated_database: str) -> Iterator[Engine]:
    engine = _engine(migrated_database)
    yield engine
    engine.dispose()


# --- catalogue snapshots -------------------------------------------------------------------

# Everything PostgreSQL records about our schemas that the migration is responsible for,
# without OIDs, so snapshots of two databases compare equal when their schemas are the same.
_CATALOGUE_QUERIES = {
    "tables": """
        SELECT n.nspname, c.relname, c.relkind, c.relpersistence
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    """,
    # attnum keeps column order: it is part of the schema (SELECT *, COPY, INSERT without a
    # column list) and differs between two otherwise equal databases only by mistake.
    "columns": """
        SELECT n.nspname, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = ANY(:schemas) AND c.relkind = 'r' AND a.attnum > 0
          AND NOT a.attisdropped
    """,
    "constraints": """
        SELECT n.nspname, c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        -- PostgreSQL 18 also lists NOT NULL as constraints ('n'); columns cover those.
        WHERE n.nspname = ANY(:schemas) AND k.contype <> 'n'
    """,
    # indexdef includes the column order, DESC, the access method and the WHERE predicate.
    "indexes": """
        SELECT schemaname, tablename, indexname, indexdef
        FROM pg_indexes WHERE schemaname = ANY(:schemas)
    """,
    "sequences": """
        SELECT schemaname, sequencename, data_type::text, start_value, min_value, max_value,
               increment_by, cycle, cache_size
        FROM pg_sequences WHERE schemaname = ANY(:schemas)
    """,
}


def _catalogue(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            name: sorted(
                tuple(row) for row in connection.execute(text(sql), {"schemas": list(SCHEMAS)})
            )
            for name, sql in _CATALOGUE_QUERIES.items()
        }


def _database_objects(engine: Engine) -> set[tuple[str, str, str]]:
    """Every schema and relation outside PostgreSQL's own, for before/after comparisons."""
    with engine.connect() as connection:
        schemas = connection.execute(
            text(
                "SELECT nspname, '', 'schema' FROM pg_namespace "
                "WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
            )
        )
        relations = connection.execute(
            text(
                "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
            )
        )
        return {tuple(row) for row in [*schemas, *relations]}


# --- upgrade -------------------------------------------------------------------------------


def test_upgrade_creates_every_schema_and_table(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        inspector = inspect(connection)
        assert set(SCHEMAS) <= set(inspector.get_schema_names())
        tables = {
            (schema, table) for schema in SCHEMAS for table in inspector.get_table_names(schema)
        }
    assert len(SCHEMAS) == 8
    assert len(tables) == 19
    assert tables == {(table.schema, table.name) for table in metadata.tables.values()}


def test_migrated_database_matches_metadata_by_alembic_comparison(
    migrated_engine: Engine,
) -> None:
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                # Only our schemas: public holds alembic_version, which is not in the metadata.
                "include_name": include_name,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        differences = compare_metadata(context, metadata)
    # No filtering of known false positives was needed: Alembic compares the DESC index
    # element (text("created_at DESC")) and the quoted server defaults correctly here. What it
    # does not compare at all (CHECK constraints, partial-index predicates) is covered by
    # test_migrated_database_matches_metadata_catalogue.
    assert differences == []


def test_migrated_database_matches_metadata_catalogue(
    migrated_engine: Engine, fresh_database: Callable[[str], str]
) -> None:
    reference = _engine(fresh_database("metadata"))
    try:
        with reference.begin() as connection:
            for schema in SCHEMAS:
                connection.execute(CreateSchema(schema))
            metadata.create_all(connection)
        expected = _catalogue(reference)
    finally:
        reference.dispose()
    actual = _catalogue(migrated_engine)
    for kind, rows in expected.items():
        # Per kind, and as sets difference, so a failure names the rows that differ.
        assert set(actual[kind]) ^ set(rows) == set(), kind
        assert actual[kind] == rows, kind
    assert len(actual["constraints"]) == 56  # sanity: the queries did see our schemas


def test_current_revision_is_head_after_upgrade(migrated_database: str, head: str) -> None:
    assert current_revision(migrated_database) == head


# --- downgrade -----------------------------------------------------------------------------


def test_downgrade_to_base_leaves_the_database_as_it_was_and_upgrades_again(
    fresh_database: Callable[[str], str], migrated_engine: Engine, head: str
) -> None:
    url = fresh_database("migrations")
    engine = _engine(url)
    try:
        before = _database_objects(engine)
        assert current_revision(url) is None  # never migrated: no version table at all

        upgrade(url)
        assert current_revision(url) == head

        downgrade(url)
        assert current_revision(url) is None
        after = _database_objects(engine)
        assert not {name for name, _, kind in after if kind == "schema"} & set(SCHEMAS)
        # Alembic keeps its (now empty) version table; everything else is as before.
        assert after - before == {
            ("public", "alembic_version", "r"),
            ("public", "alembic_version_pkc", "i"),
        }
        assert before - after == set()

        upgrade(url)
        assert current_revision(url) == head
        # The round trip rebuilt exactly what a single upgrade builds.
        assert _catalogue(engine) == _catalogue(migrated_engine)
    finally:
        engine.dispose()


def test_concurrent_upgrades_wait_for_each_other(
    fresh_database: Callable[[str], str], head: str
) -> None:
    # The local runtime and a migration Job (or two Jobs of a rollout) may start upgrades at
    # once. Without env.py's advisory lock the later one fails on CREATE SCHEMA once the
    # earlier commits. Separate processes, not threads: alembic.context and alembic.op are
    # process-wide proxies, so migrations cannot run on two threads of one process.
    url = fresh_database("concurrent")
    script = "import sys; from common.migrate import upgrade; upgrade(sys.argv[1])"
    migrators = [
        subprocess.Popen(
            [sys.executable, "-c", script, url],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for migrator in migrators:
        _, stderr = migrator.communicate(timeout=60)
        assert migrator.returncode == 0, stderr
    assert current_revision(url) == head


def test_0002_gives_existing_orders_the_trace_of_their_order_created_event(
    fresh_database: Callable[[str], str],
) -> None:
    url = fresh_database("migrations")
    engine = _engine(url)
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    try:
        upgrade(url, "0001")
        with engine.begin() as conn:
            for n, attributes in (("a", {"traceparent": traceparent}), ("b", {}), ("c", None)):
                order = f"00000000-0000-0000-0000-00000000000{n}"
                conn.execute(text(_NEW_ORDER.replace("00000000000a", f"00000000000{n}")))
                if attributes is not None:  # order c: its event is gone from the outbox
                    conn.execute(text(
                        "INSERT INTO messaging.outbox (id, topic, event_type, partition_key, "
                        "attributes, data, producer) VALUES (gen_random_uuid(), "
                        "'shop.order.created.v1', 'shop.order.created.v1', :order, "
                        "CAST(:attributes AS jsonb), '{}', 'api')"),
                        {"order": order, "attributes": json.dumps(attributes)})
        upgrade(url)
        with engine.connect() as conn:
            got: dict[str, str | None] = dict(conn.execute(text(
                "SELECT right(id::text, 1), traceparent FROM orders.orders")).all())
        assert got == {"a": traceparent, "b": None, "c": None}
    finally:
        engine.dispose()


# --- constraints ---------------------------------------------------------------------------

# Plain literals, no parameters: each case reads as the SQL an offending caller would send.
_NEW_ORDER = (
    "INSERT INTO orders.orders (id, customer_id, status, payment_mode, total) "
    "VALUES ('00000000-0000-0000-0000-00000000000a', 'alice', 'CREATED', 'auto', 10)"
)
_PRODUCT = "INSERT INTO inventory.products (sku, name, price) VALUES ('SKU-1', 'Widget', 5)"
_ACCOUNT = "INSERT INTO payments.accounts (customer_id, balance) VALUES ('alice', 5)"
_PAYMENT = (
    "INSERT INTO payments.payments (order_id, customer_id, amount, status) "
    "VALUES ('00000000-0000-0000-0000-00000000000a', 'alice', 10, 'FROZEN')"
)
_SHIPMENT = (
    "INSERT INTO shipping.shipments (order_id, status, tracking_number) "
    "VALUES ('00000000-0000-0000-0000-00000000000a', 'DISPATCHED', 'TRK-1')"
)
_INBOX = (
    "INSERT INTO messaging.inbox (consumer, event_id, event_type) "
    "VALUES ('payments', 'evt-1', 'order.created')"
)

# (setup that must succeed, statement that must fail, expected error, constraint that fires)
_VIOLATIONS: dict[str, tuple[list[str], str, type[psycopg.Error], str]] = {
    "negative stock": (
        [_PRODUCT],
        "INSERT INTO inventory.stock (sku, on_hand) VALUES ('SKU-1', -1)",
        psycopg.errors.CheckViolation,
        "ck_stock_on_hand_non_negative",
    ),
    "reserving more than on hand": (
        [_PRODUCT, "INSERT INTO inventory.stock (sku, on_hand, reserved) VALUES ('SKU-1', 2, 1)"],
        "UPDATE inventory.stock SET reserved = reserved + 2 WHERE sku = 'SKU-1'",
        psycopg.errors.CheckViolation,
        "ck_stock_reserved_within_on_hand",
    ),
    "second payment for an order": (
        [_PAYMENT],
        _PAYMENT.replace("'FROZEN'", "'CAPTURED'"),
        psycopg.errors.UniqueViolation,
        "pk_payments",
    ),
    "second shipment for an order": (
        [_SHIPMENT],
        _SHIPMENT.replace("'TRK-1'", "'TRK-2'"),
        psycopg.errors.UniqueViolation,
        "pk_shipments",
    ),
    "duplicate inbox entry": (
        [_INBOX],
        _INBOX,
        psycopg.errors.UniqueViolation,
        "pk_inbox",
    ),
    "cancelled order without a reason": (
        [_NEW_ORDER],
        "UPDATE orders.orders SET status = 'CANCELLED' WHERE customer_id = 'alice'",
        psycopg.errors.CheckViolation,
        "ck_orders_reason_iff_cancelled",
    ),
    "reason on an order that is not cancelled": (
        [_NEW_ORDER],
        "UPDATE orders.orders SET reason = 'out_of_stock' WHERE customer_id = 'alice'",
        psycopg.errors.CheckViolation,
        "ck_orders_reason_iff_cancelled",
    ),
    "an order's trace context that is no W3C traceparent": (
        [_NEW_ORDER],
        "UPDATE orders.orders SET traceparent = '00-abc-def-01' WHERE customer_id = 'alice'",
        psycopg.errors.CheckViolation,
        "ck_orders_traceparent_w3c",
    ),
    "negative account balance": (
        [_ACCOUNT],
        "UPDATE payments.accounts SET balance = balance - 5.01 WHERE customer_id = 'alice'",
        psycopg.errors.CheckViolation,
        "ck_accounts_balance_non_negative",
    ),
}


@pytest.mark.parametrize(
    ("setup", "statement", "error", "constraint"),
    list(_VIOLATIONS.values()),
    ids=list(_VIOLATIONS),
)
def test_constraint_rejects_illegal_state(
    migrated_engine: Engine,
    setup: list[str],
    statement: str,
    error: type[psycopg.Error],
    constraint: str,
) -> None:
    # Everything happens in one transaction that is rolled back, so the shared database is
    # left empty for the other integration tests.
    with migrated_engine.connect() as connection, connection.begin() as transaction:
        try:
            for sql in setup:
                connection.execute(text(sql))
            with pytest.raises(IntegrityError) as raised:
                connection.execute(text(statement))
            assert isinstance(raised.value.orig, error)
            # The constraint that fired, by name: a different one failing would be a bug too.
            assert raised.value.orig.diag.constraint_name == constraint
        finally:
            transaction.rollback()


# --- entry points other than common.migrate ------------------------------------------------


def test_alembic_command_line_reads_database_url(migrated_database: str, head: str) -> None:
    # The Kubernetes Job and developers run plain `alembic`; env.py must then find the URL in
    # DATABASE_URL, because alembic.ini deliberately holds none.
    ini = configparser.ConfigParser()
    ini.read(REPO_ROOT / "alembic.ini")
    assert not ini.has_option("alembic", "sqlalchemy.url")

    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini"), "current"],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": migrated_database},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"{head} (head)" in result.stdout


def test_offline_sql_needs_no_database() -> None:
    # `alembic upgrade head --sql` renders the script for a DBA; it must not try to connect
    # (the host below does not exist).
    config = alembic_config(f"postgresql://nobody@{uuid.uuid4().hex}.invalid/none")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    sql = config.output_buffer.getvalue()
    assert 'CREATE SCHEMA "orders"' in sql
    assert "CREATE TABLE orders.orders" in sql
    assert "WHERE published_at IS NULL" in sql


def test_history_is_linear_and_files_are_date_prefixed(head: str) -> None:
    scripts = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    # current_revision() and the single-transaction upgrade assume one head.
    assert scripts.get_heads() == [head]
    for script in scripts.walk_revisions():
        assert script.path is not None
        name = Path(script.path).name
        assert re.fullmatch(rf"\d{{4}}_\d{{2}}_\d{{2}}_{script.revision}_\w+\.py", name), name
