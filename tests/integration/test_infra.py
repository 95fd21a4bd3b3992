"""The embedded PostgreSQL and Tansu broker, and infrastructure(), with real processes
(Apache Kafka's own launcher: test_kafka_server.py).

"No child left behind" is checked against our own process tree: the session's servers
(tests/conftest.py) are children too, so tests compare the tree before and after.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from common.settings import Settings
from tests.conftest import session_broker_kind
from tests.helpers import wait_for
from tools.infra import mask_url, url_with_database
from tools.infra.embedded_pg import EmbeddedPostgres
from tools.infra.ports import port_is_free
from tools.infra.resolve import Infra, infrastructure
from tools.infra.tansu import TansuBroker
from tools.settings import EmbeddedBroker

pytestmark = pytest.mark.integration


def _descendants() -> set[int]:
    """This process's children and theirs, but not the session's `saga up` stack (its
    functions start and stop on their own: scale to zero, PingSource cold starts)."""
    found: set[int] = set()
    for child in psutil.Process().children():
        try:
            command = " ".join(child.cmdline())
            if "tools.cli.main" in command or command.startswith("saga: up"):  # its title
                continue
            found |= {child.pid} | {p.pid for p in child.children(recursive=True)}
        except psutil.Error:
            continue
    return found


def _query(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run `statements` in one transaction; the rows of the last one."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        for statement in statements[:-1]:
            conn.execute(statement)
        return conn.execute(statements[-1]).fetchall()


@pytest.fixture
def no_infra_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("DATABASE_URL", "SAGA_DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS",
                 "SAGA_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    yield


def test_embedded_postgres_answers_then_stops_without_leftovers(pg_tmp_path: Path) -> None:
    before = _descendants()
    server = EmbeddedPostgres(pg_tmp_path / "data", log_path=pg_tmp_path / "pg.log")
    url = server.start()
    port, pid = server.port, server.pid
    assert url == f"postgresql://postgres@127.0.0.1:{port}/postgres"
    # New ones appeared (not a superset: an older descendant may end meanwhile).
    assert pid is not None and _descendants() - before
    assert _query(url, "SELECT 1 + 1") == [(2,)]

    server.stop()
    assert not psutil.pid_exists(pid)
    assert _descendants() - before == set()  # new ones only: an older one may end meanwhile
    assert port_is_free(port)
    server.stop()  # idempotent


def test_embedded_postgres_keeps_data_across_restarts_and_stale_pid_files(
    pg_tmp_path: Path,
) -> None:
    data = pg_tmp_path / "data"
    with EmbeddedPostgres(data) as server:
        url = server.create_database("keep")
        assert server.create_database("keep") == url  # idempotent
        _query(url, "CREATE TABLE t (x int)", "INSERT INTO t VALUES (42) RETURNING x")
    # A crash can leave postmaster.pid naming a pid that now belongs to something else.
    (data / "postmaster.pid").write_text(f"{psutil.Process().pid}\n{data}\n")
    with EmbeddedPostgres(data) as server:
        assert _query(server.url_for("keep"), "SELECT x FROM t") == [(42,)]


def test_start_stops_a_server_orphaned_by_a_crashed_run(pg_tmp_path: Path) -> None:
    data = pg_tmp_path / "data"
    crashed_run = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from tools.infra.embedded_pg import EmbeddedPostgres
        server = EmbeddedPostgres(Path({str(data)!r}))
        server.start()
        print(server.pid, flush=True)
        os._exit(0)  # no stop(): the server is orphaned
    """)
    result = subprocess.run([sys.executable, "-c", crashed_run], capture_output=True,
                            text=True, timeout=60, check=True)
    orphan = psutil.Process(int(result.stdout.strip()))
    assert orphan.is_running()

    with EmbeddedPostgres(data) as server:
        assert not server.attached
        assert server.pid != orphan.pid
        assert not orphan.is_running()
        assert _query(server.url, "SELECT 1") == [(1,)]


def test_start_reuses_a_server_that_a_live_process_runs(pg_tmp_path: Path) -> None:
    with EmbeddedPostgres(pg_tmp_path / "data") as first:
        second = EmbeddedPostgres(pg_tmp_path / "data")
        assert second.start() == first.url
        assert second.attached and second.pid == first.pid
        second.stop()
        assert first.pid is not None and _query(first.url, "SELECT 1") == [(1,)]


@pytest.mark.tansu_only
def test_tansu_starts_and_stops_without_leftovers(tmp_path: Path) -> None:
    before = _descendants()
    broker = TansuBroker(log_path=tmp_path / "broker.log")
    bootstrap = broker.start()
    port = broker.port
    assert bootstrap == f"127.0.0.1:{port}"
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
    assert len(metadata.brokers) == 1

    broker.stop()
    assert _descendants() - before == set()  # new ones only: an older one may end meanwhile
    assert port_is_free(port)


def test_topics_idempotent_producer_and_consumer_group(kafka_bootstrap: str) -> None:
    topic = f"infra-test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[
        topic
    ].result(timeout=10)
    # Kafka's metadata shows a new topic a moment after CreateTopics answered.
    wait_for(lambda: len(admin.list_topics(topic, timeout=5).topics[topic].partitions) == 3,
             message="the new topic's three partitions in the metadata")

    # Producer and consumer settings for the embedded broker: DESIGN.md section 7.
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True,
                         "acks": "all", "batch.num.messages": 1})
    sent = {f"value-{i}" for i in range(30)}
    for value in sorted(sent):
        producer.produce(topic, key=value[-1:], value=value)
    assert producer.flush(10) == 0

    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"{topic}-group",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                         "fetch.wait.max.ms": 10})
    try:
        consumer.subscribe([topic])
        received: set[str] = set()
        deadline = time.monotonic() + 30
        while received != sent and time.monotonic() < deadline:
            message = consumer.poll(0.5)  # blocks until a record arrives or 0.5 s pass
            if message is not None and message.error() is None:
                received.add((message.value() or b"").decode())
        assert received == sent
        assert {tp.partition for tp in consumer.assignment()} == {0, 1, 2}
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, p) for p in range(3)], 10)
        # batch.num.messages=1 keeps the broker's offsets exact: one offset per record.
        assert sum(tp.offset for tp in committed) == len(sent)
    finally:
        consumer.close()


def test_infrastructure_uses_what_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_server_url: str, kafka_bootstrap: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_server_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    before = _descendants()
    with infrastructure(Settings(), tmp_path) as infra:
        assert infra == Infra(database_url=pg_server_url, kafka_bootstrap=kafka_bootstrap,
                              embedded_db=False, embedded_broker=None)
        assert _descendants() - before == set()  # new ones only: an older one may end meanwhile
    assert not (tmp_path / "pgdata").exists()


@pytest.mark.usefixtures("no_infra_env")
def test_infrastructure_starts_and_stops_embedded_servers(pg_tmp_path: Path) -> None:
    before = _descendants()
    broker: EmbeddedBroker = "kafka" if session_broker_kind() == "kafka" else "embedded"
    with infrastructure(Settings(), pg_tmp_path, need_kafka=False, broker=broker) as infra:
        assert infra.embedded_db and infra.embedded_broker is None
        assert infra.kafka_bootstrap == ""
        _query(infra.database_url, "CREATE TABLE kept (x int)",
               "INSERT INTO kept VALUES (7) RETURNING x")
    assert _descendants() - before == set()  # new ones only: an older one may end meanwhile

    with infrastructure(Settings(), pg_tmp_path, database="saga", broker=broker) as infra:
        assert infra.embedded_db and infra.embedded_broker == session_broker_kind()
        assert infra.database_url.endswith("/saga")
        assert _query(infra.database_url, "SELECT x FROM kept") == [(7,)]
        metadata = AdminClient({"bootstrap.servers": infra.kafka_bootstrap}).list_topics(
            timeout=5)
        assert len(metadata.brokers) == 1
        db_port = urlsplit(infra.database_url).port
        kafka_port = int(infra.kafka_bootstrap.rsplit(":", 1)[1])
    assert _descendants() - before == set()  # new ones only: an older one may end meanwhile
    assert db_port is not None and port_is_free(db_port) and port_is_free(kafka_port)
    assert (pg_tmp_path / "logs" / "postgres.log").exists()
    broker_log = "kafka.log" if broker == "kafka" else "broker.log"
    assert (pg_tmp_path / "logs" / broker_log).exists()


def test_urls_never_show_a_password() -> None:
    url = "postgresql://saga:s3cr%40t@db.example:5432/saga?sslmode=require"
    assert mask_url(url) == "postgresql://saga:***@db.example:5432/saga?sslmode=require"
    assert "s3cr" not in repr(Infra(url, "k:9092", embedded_db=False, embedded_broker=None))
    assert mask_url("postgresql://h/db?password=x&a=1") == "postgresql://h/db?password=***&a=1"
    assert url_with_database(url, "other") == (
        "postgresql://saga:s3cr%40t@db.example:5432/other?sslmode=require")
