"""Session fixtures shared by the whole test suite: where PostgreSQL, Kafka and Redis come
from, and which broker the session tests on.

- `--broker embedded|kafka` (or SAGA_TEST_BROKER; default embedded): the broker of the
  session. `./taskw test` runs the whole suite on the embedded Tansu broker, then
  tests/integration and tests/e2e again with `--broker kafka` (Apache Kafka). The choice
  is also exported as SAGA_BROKER, so every `saga up` a test starts runs on it.
- `pg_server_url`: DATABASE_URL when set (CI runs PostgreSQL on 127.0.0.1:5432 with trust
  auth), else one embedded PostgreSQL for the session, in a temporary directory.
- `kafka_bootstrap`: KAFKA_BOOTSTRAP_SERVERS when set, else one broker of the session's
  kind.
- `fresh_database(prefix)`: a brand-new database on that server; dropped at session end.
- `redis_url`: REDIS_TEST_URL when set, else a redis-server of the session's own.
- `saga_env`: this process pointed at a migrated database and the broker; `client`, the
  api's test client on them.

Session scoped and lazy: a run pays for a server only if one of its tests asks for it.
Unit tests (tests/unit) use none of them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from common.events import catalogue
from common.migrate import upgrade
from common.settings import Settings
from tests.helpers import close_function_resources, dispose_test_engines
from tests.redis_server import RedisServer
from tools import REPO_ROOT
from tools.infra import create_database, drop_database
from tools.infra.apache_kafka import KafkaServer
from tools.infra.apt import apt_install
from tools.infra.embedded_pg import EmbeddedPostgres
from tools.infra.kafka_clients import ensure_topics, runtime_topics
from tools.infra.kafka_dist import KafkaSetupError, ensure_dist
from tools.infra.tansu import TansuBroker
from tools.manifests.topics import load_topic_specs
from tools.settings import KafkaBrokerKind, LocalSettings, broker_env, get_local_settings

if TYPE_CHECKING:
    from flask.testing import FlaskClient

BROKERS = ("embedded", "kafka")
_session: dict[str, KafkaBrokerKind] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker", choices=BROKERS, default=os.environ.get("SAGA_TEST_BROKER") or "embedded",
        help="the broker of the session: embedded (Tansu) or kafka (Apache Kafka; needs Java "
        "17+ and Maven); default SAGA_TEST_BROKER, else embedded")


def pytest_configure(config: pytest.Config) -> None:
    broker = config.getoption("--broker")
    # Every `saga up` the tests start inherits it (they pass os.environ on).
    os.environ["SAGA_BROKER"] = broker
    os.environ.pop("SAGA_KAFKA_BROKER_KIND", None)  # each test says what its broker is
    given = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    _session["kind"] = "kafka" if given or broker == "kafka" else "tansu"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kind = session_broker_kind()
    for item in items:
        if kind == "kafka" and item.get_closest_marker("tansu_only"):
            item.add_marker(pytest.mark.skip(
                reason="about the Tansu broker only; this session runs on Apache Kafka"))
        if kind != "kafka" and item.get_closest_marker("kafka_only"):
            item.add_marker(pytest.mark.skip(
                reason="about Apache Kafka only: `./taskw test` runs it in its Kafka tier "
                "(pytest --broker kafka)"))


def session_broker_kind() -> KafkaBrokerKind:
    """What the session's broker is: Apache Kafka when KAFKA_BOOTSTRAP_SERVERS names one (at
    the session's start) or the session runs with --broker kafka; else Tansu."""
    return _session.get("kind", "tansu")


@contextmanager
def world_traversable_tmp(prefix: str) -> Iterator[Path]:
    """A temporary directory outside pytest's private /tmp/pytest-of-<user> tree. As root,
    the embedded PostgreSQL runs as an unprivileged account that must traverse every parent
    of its data dir; pytest re-creates its base dir 0700 at each session start, so another
    pytest session starting meanwhile would lock our server out of its own files."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg_tmp_path() -> Iterator[Path]:
    """Like tmp_path, for tests that start an embedded PostgreSQL in it."""
    with world_traversable_tmp("saga-pgtest-") as path:
        yield path


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """postgresql:// URL of a server tests may create databases on (superuser access)."""
    given = os.environ.get("DATABASE_URL")
    if given:
        # SQLAlchemy-style URLs name the driver; psycopg/libpq want the plain scheme.
        yield given.replace("postgresql+psycopg://", "postgresql://", 1)
        return
    with (
        world_traversable_tmp("saga-pgtest-") as base,
        EmbeddedPostgres(base / "data", log_path=base / "postgres.log") as server,
    ):
        yield server.url


@pytest.fixture(scope="session", autouse=True)
def kafka_prerequisites() -> None:
    """On a Kafka session: Java and the broker's jars before any test starts a broker (the
    session fixture or a `saga up`). Java and Maven are installed with apt-get where they
    are missing and can be (CI runs as root); else the session fails naming the fix."""
    if session_broker_kind() != "kafka" or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return
    try:
        ensure_dist()
    except KafkaSetupError as first:
        why = apt_install("default-jre-headless", "maven")  # Java 17 on Debian 12, 21 on 13
        try:
            ensure_dist()
        except KafkaSetupError as again:
            pytest.fail(f"the Kafka tier cannot run: {again} (apt-get: {why or 'installed'};"
                        f" first attempt: {first})", pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bootstrap.servers of the session's broker (session_broker_kind() says which), with
    the catalogue's topics created as kafka-sources/topics/ says, as `saga up` and a
    cluster's KafkaTopics do (Kafka creates no topic on a producer's demand)."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        _create_topics(given)
        yield given
        return
    base = tmp_path_factory.mktemp("broker")
    server = (KafkaServer(base / "kafka", log_path=base / "kafka.log")
              if session_broker_kind() == "kafka" else TansuBroker(log_path=base / "broker.log"))
    with server:
        _create_topics(server.bootstrap)
        yield server.bootstrap


def _create_topics(bootstrap: str) -> None:
    settings = LocalSettings(kafka_bootstrap_servers=bootstrap,
                             kafka_broker_kind=session_broker_kind())
    ensure_topics(settings, runtime_topics(settings, catalogue.topics(),
                                           load_topic_specs(REPO_ROOT)))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """redis:// URL of a Redis the cache tests may use (and flush)."""
    given = os.environ.get("REDIS_TEST_URL")
    if given:
        yield given
        return
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def fresh_database(pg_server_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: `fresh_database("orders")` creates an empty database with a unique name
    (saga_t_orders_<random>) and returns its URL. Every one is dropped at session end,
    with FORCE, so connections a test left open do not block the drop."""
    created: list[str] = []

    def make(prefix: str) -> str:
        slug = re.sub(r"[^a-z0-9]+", "_", prefix.lower()).strip("_")[:40] or "db"
        name = f"saga_t_{slug}_{secrets.token_hex(4)}"  # <= 63 bytes, PostgreSQL's limit
        url = create_database(pg_server_url, name)
        created.append(name)
        return url

    yield make
    for name in created:
        drop_database(pg_server_url, name)


# --- the system under test ---------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_database(fresh_database: Callable[[str], str]) -> str:
    """postgresql:// URL of a database of this session, migrated to head.

    Shared by every test of the session, so tests must not change its schema and should
    leave no data another test could trip over (use unique keys: fresh UUIDs, SKUs, names).
    """
    url = fresh_database("app")
    upgrade(url)
    return url


TEST_JWT_SECRET = "test-secret-" + "x" * 40


@pytest.fixture
def saga_env(
    monkeypatch: pytest.MonkeyPatch, migrated_database: str, kafka_bootstrap: str
) -> Iterator[Settings]:
    """Point this process (functions under test_client, the step runtime, the API) at the
    migrated test database and the test broker, as the local runtime would with env vars.
    Yields the resulting Settings; the resources of the function clients made in the test
    are closed after it (each main.py builds its own: common/resources.py)."""
    monkeypatch.setenv("DATABASE_URL", migrated_database)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    for name, value in broker_env(session_broker_kind()).items():  # tools' and functions'
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SAGA_JWT_SECRET", TEST_JWT_SECRET)
    monkeypatch.setenv("SAGA_PROFILE", "local")
    monkeypatch.delenv("REDIS_URL", raising=False)  # tests that want the cache set it
    yield get_local_settings()
    close_function_resources()


@pytest.fixture
def client(saga_env: Settings) -> FlaskClient:
    """The api function's Flask test client, on the database and broker saga_env points at
    (tests/functions/test_api_cache.py overrides it with the read cache on)."""
    from tests.functions.api_support import api_client

    return api_client()


@pytest.fixture(scope="session", autouse=True)
def _test_engines() -> Iterator[None]:
    """The tests' own engines (tests/helpers.py engine_of) end with the session."""
    yield
    dispose_test_engines()
