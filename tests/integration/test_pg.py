"""common/pg.py's statements on a real PostgreSQL: parameters and NULLs, the types the
functions write and read (Decimal, UUID, JSON, timestamps, arrays), psycopg's errors with
their SQLSTATE classes as is_transient maps them, a lost connection, statements prepared
once per connection under names of their own (beside psycopg's), prepared again when the
server forgot them, and a statement waiting on PostgreSQL leaving other threads running."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from common.pg import Connection, Tx, compile_statement, is_transient, transaction
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

THINGS = """
CREATE TEMPORARY TABLE things (
    id uuid PRIMARY KEY, amount numeric(30, 9), doc jsonb, at timestamptz, label text,
    qty int, flag bool, tags text[])
"""
PUT = """
INSERT INTO things (id, amount, doc, at, label, qty, flag, tags)
VALUES (%(id)s, %(amount)s, %(doc)s, %(at)s, %(label)s, %(qty)s, %(flag)s, %(tags)s)
"""
GET = "SELECT amount, doc, at, label, qty, flag, tags FROM things WHERE id = %(id)s"


def _connect(url: str, **kwargs: Any) -> Connection:
    return psycopg.connect(url, options="-c timezone=UTC", **kwargs)


@pytest.fixture
def conn(migrated_database: str) -> Iterator[Connection]:
    with _connect(migrated_database, prepare_threshold=5) as connection:
        connection.execute(THINGS)
        connection.commit()
        yield connection


def _prepared(conn: Connection) -> list[str]:
    """The names of the statements prepared on `conn`'s session."""
    rows = conn.execute("SELECT name FROM pg_prepared_statements ORDER BY name").fetchall()
    conn.rollback()
    return [name for (name,) in rows]


def test_values_of_every_type_the_functions_use_come_back_equal(conn: Connection) -> None:
    row: dict[str, Any] = {
        "id": uuid.uuid4(), "amount": Decimal("12345678901234567890.123456789"),
        "doc": Jsonb({"total": "10.10", "lines": [{"sku": "A", "qty": 2}], "note": None}),
        "at": datetime(2026, 12, 7, 9, 30, 1, 123456, tzinfo=timezone(timedelta(hours=2))),
        "label": "a 'quoted' %(name)s label ü", "qty": -3, "flag": False, "tags": ["x", "y,z"]}
    tx = Tx(conn)
    assert tx.run(PUT, row) == 1
    got = tx.one(GET, {"id": row["id"]})
    assert got == (row["amount"], row["doc"].obj, row["at"], row["label"], -3, False,
                   ["x", "y,z"])
    assert got is not None and got[2].tzinfo is not None


def test_none_is_null_both_ways(conn: Connection) -> None:
    tx = Tx(conn)
    key = uuid.uuid4()
    tx.run(PUT, {"id": key, "amount": None, "doc": None, "at": None, "label": None,
                 "qty": None, "flag": None, "tags": None})
    assert tx.one(GET, {"id": key}) == (None,) * 7
    assert tx.one("SELECT count(*) FROM things WHERE id = %(id)s AND label IS NULL",
                  {"id": key}) == (1,)


def test_a_name_used_twice_is_one_parameter_and_a_double_percent_is_a_percent(
        conn: Connection) -> None:
    statement = compile_statement("SELECT %(n)s::int + %(n)s::int, 'x%%', %(m)s::text")
    assert statement.text == b"SELECT $1::int + $1::int, 'x%', $2::text"
    assert statement.names == ("n", "m")
    assert Tx(conn).one("SELECT %(n)s::int + %(n)s::int, 'x%%', %(m)s::text",
                        {"n": 20, "m": "y"}) == (40, "x%", "y")


def test_run_one_all_and_many_report_what_the_statement_did(conn: Connection) -> None:
    tx = Tx(conn)
    keys = [uuid.uuid4() for _ in range(3)]
    tx.many("INSERT INTO things (id, qty) VALUES (%(id)s, %(qty)s)",
            [{"id": key, "qty": i} for i, key in enumerate(keys)])
    assert tx.all("SELECT qty FROM things WHERE id = ANY(%(ids)s) ORDER BY qty",
                  {"ids": keys}) == [(0,), (1,), (2,)]
    assert tx.run("UPDATE things SET flag = true WHERE id = ANY(%(ids)s)", {"ids": keys}) == 3
    assert tx.one(GET, {"id": uuid.uuid4()}) is None
    assert tx.all(GET, {"id": uuid.uuid4()}) == []


def test_a_missing_parameter_is_named(conn: Connection) -> None:
    with pytest.raises(KeyError, match="qty"):
        Tx(conn).run("UPDATE things SET qty = %(qty)s WHERE id = %(id)s", {"id": uuid.uuid4()})
    with pytest.raises(TypeError, match="id"):
        Tx(conn).one(GET)


@pytest.mark.parametrize(("sql", "error", "transient"), [
    ("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = 'unique_violation'; END $$",
     pg_errors.UniqueViolation, False),
    ("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = 'check_violation'; END $$",
     pg_errors.CheckViolation, False),
    ("SELECT no_such_column FROM things", pg_errors.UndefinedColumn, False),
    ("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = 'serialization_failure'; END $$",
     pg_errors.SerializationFailure, True),
    ("SELECT pg_sleep(5)", pg_errors.QueryCanceled, True),  # what statement_timeout raises
])
def test_errors_are_psycopgs_own_with_their_sqlstate(
        conn: Connection, sql: str, error: type[psycopg.Error], transient: bool) -> None:
    conn.execute("SET statement_timeout = 100")
    conn.commit()
    with pytest.raises(error) as raised:
        Tx(conn).run(sql)
    assert raised.value.sqlstate == error.sqlstate
    assert is_transient(raised.value) is transient
    conn.rollback()
    assert Tx(conn).one("SELECT 1") == (1,), "the connection is usable after a rollback"


def test_a_lost_connection_is_an_operational_error_and_the_connection_broken(
        conn: Connection, migrated_database: str) -> None:
    Tx(conn).one("SELECT 1")
    conn.commit()
    with _connect(migrated_database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError) as lost:
        Tx(conn).one(GET, {"id": uuid.uuid4()})
    assert is_transient(lost.value)
    assert conn.broken


def test_a_statement_is_prepared_once_per_connection_beside_psycopgs_own(
        conn: Connection) -> None:
    sql = "SELECT qty FROM things WHERE id = %(id)s"
    name = compile_statement(sql).name.decode()
    for _ in range(3):  # a rollback keeps it
        Tx(conn).one(sql, {"id": uuid.uuid4()})
        conn.rollback()
    for _ in range(12):  # the readiness probe's ping prepares nothing of psycopg's
        ConnectionPool.check_connection(conn)
    assert _prepared(conn) == [name]
    # psycopg prepares the same text under a name of its own on the same session.
    for _ in range(6):
        conn.execute(sql, {"id": uuid.uuid4()}, prepare=True)
    Tx(conn).one(sql, {"id": uuid.uuid4()})
    names = [n for (n,) in conn.execute("SELECT name FROM pg_prepared_statements").fetchall()]
    assert names.count(name) == 1 and any(n.startswith("_pg3_") for n in names), names
    assert compile_statement(sql + " ").name != compile_statement(sql).name


def test_a_statement_psycopgs_rollback_deallocated_is_prepared_again(
        conn: Connection) -> None:
    """Once psycopg prepared statements of its own on a connection, its rollback sends
    DEALLOCATE ALL: the next statement fails once (transaction() retries it), then runs."""
    sql = "SELECT qty FROM things WHERE id = %(id)s"
    Tx(conn).one(sql, {"id": uuid.uuid4()})
    for _ in range(6):
        conn.execute(sql, {"id": uuid.uuid4()}, prepare=True)
    conn.rollback()
    with pytest.raises(pg_errors.InvalidSqlStatementName):
        Tx(conn).one(sql, {"id": uuid.uuid4()})
    conn.rollback()
    assert Tx(conn).one("SELECT count(*) FROM things WHERE id = %(id)s",
                        {"id": uuid.uuid4()}) == (0,)
    assert Tx(conn).one(sql, {"id": uuid.uuid4()}) is None


def test_without_prepared_statements_nothing_is_prepared(migrated_database: str) -> None:
    with _connect(migrated_database, prepare_threshold=None) as conn:
        assert Tx(conn).one("SELECT %(n)s::int * 2", {"n": 21}) == (42,)
        conn.rollback()
        assert _prepared(conn) == []


def test_a_statement_the_server_forgot_is_prepared_again_by_a_retry(
        migrated_database: str) -> None:
    """A pooler's reset (DEALLOCATE ALL) between transactions: the first attempt fails,
    `transaction` runs it again, and it prepares the statement anew."""
    pool: ConnectionPool[Connection] = ConnectionPool(
        migrated_database, connection_class=psycopg.Connection, min_size=1, max_size=1,
        kwargs={"prepare_threshold": 5}, open=True)
    try:
        def work(tx: Tx) -> Any:
            return tx.one("SELECT %(n)s::int + 1", {"n": 1})

        assert transaction(pool, work) == (2,)
        with pool.connection() as conn:
            conn.execute("DEALLOCATE ALL")
        attempts: list[int] = []

        def counted(tx: Tx) -> Any:
            attempts.append(1)
            return work(tx)

        assert transaction(pool, counted) == (2,)
        assert len(attempts) == 2
    finally:
        pool.close()


def test_a_statement_waiting_on_postgresql_lets_other_threads_run(
        conn: Connection, migrated_database: str) -> None:
    """libpq's call runs without the GIL: this thread releases the lock the statement waits
    for; were the GIL held, neither would ever finish."""
    key = 731_031
    with _connect(migrated_database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        done = threading.Event()

        def wait_for_lock() -> None:
            Tx(conn).one("SELECT pg_advisory_xact_lock(%(key)s)", {"key": key})
            done.set()

        waiter = threading.Thread(target=wait_for_lock, daemon=True)
        waiter.start()
        wait_for(lambda: holder.execute(
            "SELECT count(*) FROM pg_locks"
            " WHERE locktype = 'advisory' AND objid = %s AND NOT granted", (key,)
        ).fetchone() == (1,), timeout=10, message="the statement waiting on the lock")
        holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
        waiter.join(timeout=10)
    assert done.is_set()
