"""Where PostgreSQL and Kafka come from: given by the environment (DATABASE_URL,
KAFKA_BOOTSTRAP_SERVERS) or embedded (resolve), and the tools' clients of them. Modules:
server (what every embedded server shares), embedded_pg, tansu, apache_kafka and
kafka_dist (its Java and jars); reach (does a given broker or database answer); ports
(ports, logs, stopping processes); kafka_clients (consumers, topics, librdkafka's log
lines); apt (a Debian package a tool needs). Here: the database-URL helpers. Importing it
starts nothing."""

from __future__ import annotations

import contextlib
import re
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql


def url_with_database(url: str, database: str) -> str:
    """`url` pointing at `database` instead (user, host, port and query kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


def mask_url(url: str) -> str:
    """`url` with its password (in the user info or a password= parameter) replaced by ***,
    for logs and messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    query = re.sub(r"(^|&)password=[^&]*", r"\1password=***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def create_database(server_url: str, name: str) -> str:
    """Create database `name` on the server of `server_url` unless it exists; its URL."""
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is None:
            # Suppressed: another process created it between our check and our CREATE.
            with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url_with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name` if it exists, disconnecting its sessions (PostgreSQL 13+)."""
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
