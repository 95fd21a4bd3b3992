"""Every SQL statement the deployed code runs, held to the schema: each module-level
statement constant of common/ and functions/ (an UPPER_CASE string that starts with SELECT,
INSERT, UPDATE, DELETE or WITH) is PREPAREd by PostgreSQL against the migrated database,
so its parser and analyzer check every table, column, type, operator and function it names,
with its parameters typed as PostgreSQL infers them, as common/pg.py prepares it (each
arrives untyped: one whose type the statement does not fix carries a cast). The tables it
names, and the columns it inserts or sets, must also be common/tables.py's, which
tests/integration/test_migrations.py holds equal to the migrations."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

import common
import functions
from common import tables as t
from common.pg import compile_statement
from common.settings import Settings
from functions.retention.rules import retention_rules
from functions.retention.sweep import count_statement, delete_statement

pytestmark = pytest.mark.integration

_STATEMENT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)
_TABLE = re.compile(r"\b(" + "|".join(t.SCHEMAS) + r")\.(\w+)\b")
_INSERT_COLUMNS = re.compile(r"INSERT INTO (\w+\.\w+)\s*\(([^)]*)\)", re.IGNORECASE)
_UPDATE_SET = re.compile(
    r"UPDATE (\w+\.\w+)(?:\s+AS\s+\w+)?\s+SET\s+(.*?)\s+(?:WHERE|FROM|RETURNING)\b",
    re.IGNORECASE | re.DOTALL)


def statements() -> Iterator[tuple[str, str]]:
    """(module.NAME, SQL) of every statement constant in the deployed packages."""
    for package in (common, functions):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.rsplit(".", 1)[-1] in ("main", "__main__"):
                continue  # entry points: they build the process's resources at import
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if name.isupper() and isinstance(value, str) and _STATEMENT.match(value):
                    yield f"{info.name}.{name}", value


STATEMENTS = dict(statements())


def retention_statements() -> Iterator[tuple[str, str]]:
    """The retention sweep's, built from its rules: on Apache Kafka, and on Tansu with the
    broker's start known (the rules it adds then)."""
    for broker, settings in (
            ("kafka", Settings(broker_enforces_retention=True)),
            ("tansu", Settings(broker_enforces_retention=False,
                               broker_started_at=datetime.now(UTC)))):
        for number, rule in enumerate(retention_rules(settings)):
            yield f"retention.{broker}.{rule.name}.{number}.delete", delete_statement(rule)
            yield f"retention.{broker}.{rule.name}.{number}.count", count_statement(rule)


RETENTION_STATEMENTS = dict(retention_statements())


def problems_of(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> list[str]:
    """What PostgreSQL and tables.py find wrong with `sql`; [] when nothing."""
    found = []
    try:
        with conn.transaction(force_rollback=True):
            prepared = compile_statement(sql).text.decode()
            conn.execute(f"PREPARE saga_statement_check AS {prepared}")
    except psycopg.Error as exc:
        found.append(f"PostgreSQL: {str(exc).splitlines()[0]}")
    finally:
        conn.execute("DEALLOCATE ALL")
    tables = t.metadata.tables
    for schema, table in _TABLE.findall(sql):
        if f"{schema}.{table}" not in tables:
            found.append(f"{schema}.{table} is not in tables.py")
    written = [(table, [c.strip() for c in columns.split(",")])
               for table, columns in _INSERT_COLUMNS.findall(sql)]
    written += [(table, [a.split("=")[0].strip() for a in _assignments(sets)])
                for table, sets in _UPDATE_SET.findall(sql)]
    for table, columns in written:
        if table in tables:
            found += [f"{table}.{column} is not in tables.py" for column in columns
                      if column not in tables[table].c]
    return found


def _assignments(sets: str) -> list[str]:
    """The `column = expression` parts of a SET list (commas inside parentheses kept)."""
    parts, depth, current = [], 0, ""
    for char in sets:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


@pytest.fixture(scope="module")
def conn(migrated_database: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(migrated_database, autocommit=True) as connection:
        yield connection


def test_the_deployed_code_owns_its_statements_in_sql_modules() -> None:
    owners = {name.rsplit(".", 1)[0] for name in STATEMENTS}
    assert {"common.messaging_sql", "common.order_sql", "functions.inventory.sql",
            "functions.payments.sql", "functions.shipping.sql", "functions.notifications.sql",
            "functions.api.sql", "functions.console.sql"} <= owners, owners


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_each_statement_fits_the_migrated_schema_and_tables_py(
        conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    assert problems_of(conn, STATEMENTS[name]) == []


@pytest.mark.parametrize("name", sorted(RETENTION_STATEMENTS))
def test_each_retention_statement_fits_the_migrated_schema_and_tables_py(
        conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    assert problems_of(conn, RETENTION_STATEMENTS[name]) == []


@pytest.mark.parametrize(("sql", "named"), [
    ("SELECT status, reservd FROM inventory.reservations WHERE order_id = %(id)s", "reservd"),
    ("INSERT INTO payments.ledger (customer_id, kind, amont) VALUES (%(c)s, 'x', 1)", "amont"),
    ("UPDATE shipping.shipments SET adress = %(a)s WHERE order_id = %(id)s", "adress"),
    ("SELECT id FROM orders.order WHERE id = %(id)s", "orders.order"),
    ("SELECT sku FROM inventory.reservation_items WHERE order_id = %(id)s + 1",
     "operator does not exist"),
])
def test_a_typo_is_caught(conn: psycopg.Connection[tuple[object, ...]], sql: str,
                          named: str) -> None:
    found = problems_of(conn, sql)
    assert found, f"nothing found wrong with {sql!r}"
    assert any(named in problem for problem in found), found
