"""The infrastructure a process runs on: what DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS name,
or, where unset, an embedded PostgreSQL and broker (Tansu, or Apache Kafka with
`broker="kafka"`) that live exactly as long as the `with infrastructure(...)` block: stopped
on leaving it, also on an exception, by an atexit hook, or on SIGTERM/SIGHUP (turned into
SystemExit while the block is open). After a SIGKILL the broker dies with us
(ChildServer._launch), and PostgreSQL, which must not be SIGKILLed, is found orphaned and
stopped by the next start on the same data dir."""

from __future__ import annotations

import atexit
import logging
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from common.settings import Settings
from common.settings_errors import env_name
from tools.infra import mask_url
from tools.infra.apache_kafka import KafkaServer
from tools.infra.embedded_pg import EmbeddedPostgres
from tools.infra.kafka_dist import ensure_dist
from tools.infra.reach import check_database, check_kafka, setting_origin
from tools.infra.server import BrokerServer, ChildServer
from tools.infra.tansu import TansuBroker
from tools.settings import EmbeddedBroker, KafkaBrokerKind, LocalSettings

logger = logging.getLogger(__name__)
_stack_lock = threading.Lock()  # two servers start at once, each registering its stop


@dataclass(frozen=True)
class Infra:
    database_url: str  # postgresql://... of the database the system uses
    kafka_bootstrap: str  # "" when not needed (need_kafka=False) and not configured
    embedded_db: bool
    # The broker we started ("tansu": memory only; "kafka": Apache Kafka, durable), or None:
    # KAFKA_BOOTSTRAP_SERVERS named one (or none was needed).
    embedded_broker: KafkaBrokerKind | None

    def broker_kind(self, settings: LocalSettings) -> KafkaBrokerKind:
        """What the clients talk to: the broker we started, else what the settings say of
        the given one (Kafka unless SAGA_KAFKA_BROKER_KIND=tansu)."""
        return self.embedded_broker or settings.kafka_broker_kind

    def __repr__(self) -> str:  # the dataclass default would print the password
        return (f"Infra(database_url={mask_url(self.database_url)!r}, "
                f"kafka_bootstrap={self.kafka_bootstrap!r}, embedded_db={self.embedded_db}, "
                f"embedded_broker={self.embedded_broker!r})")


@contextmanager
def infrastructure(settings: Settings, state_dir: Path, *, database: str = "saga",
                   need_kafka: bool = True, broker: EmbeddedBroker = "embedded"
                   ) -> Iterator[Infra]:
    """PostgreSQL and Kafka for the duration of the block.

    Embedded PostgreSQL keeps its data in `state_dir`/pgdata (so orders survive restarts)
    and gets database `database` created if missing; logs go to `state_dir`/logs. The
    embedded broker is Tansu (`broker="embedded"`, memory only) or Apache Kafka
    (`broker="kafka"`, its logs in `state_dir`/kafka, kept across restarts). With
    `need_kafka=False` (e.g. `saga migrate`) no broker is started.
    """
    state_dir = Path(state_dir)
    log_dir = state_dir / "logs"
    _check_given(settings, need_kafka)
    with ExitStack() as stack:
        stack.enter_context(_termination_exits_cleanly())
        embedded: KafkaBrokerKind | None = None
        if need_kafka and not settings.kafka_bootstrap_servers:
            embedded = "kafka" if broker == "kafka" else "tansu"
            if embedded == "kafka":
                ensure_dist()  # Java and the jars: refused (naming the fix) before anything starts
        pg = None if settings.database_url is not None else EmbeddedPostgres(
            state_dir / "pgdata", log_path=log_dir / "postgres.log")
        server = None if embedded is None else embedded_broker(embedded, state_dir, log_dir)
        # Both at once: the broker from this thread (a broker started with die_with_parent
        # dies when its starting thread ends), PostgreSQL (never so) from a helper thread.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="infra") as pool:
            pg_url = pool.submit(_run_until_exit, stack, pg) if pg is not None else None
            try:
                bootstrap = (_run_until_exit(stack, server) if server is not None
                             else settings.kafka_bootstrap_servers or "")
            finally:
                if pg_url is not None:
                    pg_url.result()
        if pg is not None:
            database_url = pg.create_database(database)
        else:
            assert settings.database_url is not None
            database_url = settings.database_url.get_secret_value()
        infra = Infra(database_url=database_url, kafka_bootstrap=bootstrap,
                      embedded_db=settings.database_url is None, embedded_broker=embedded)
        logger.info("infrastructure: database %s (%s), kafka %s (%s)",
                    mask_url(infra.database_url), "embedded" if infra.embedded_db else "given",
                    infra.kafka_bootstrap or "-", embedded or "given")
        yield infra


def _check_given(settings: Settings, need_kafka: bool) -> None:
    """A database or broker the settings name answers, before anything is started (else
    Unreachable: one line naming the variable, tools/infra/reach.py)."""
    if settings.database_url is not None:
        check_database(settings.database_url.get_secret_value(),
                       *setting_origin(env_name(type(settings), "database_url")))
    if need_kafka and settings.kafka_bootstrap_servers:
        check_kafka(settings, *setting_origin(env_name(type(settings), "kafka_bootstrap_servers")))


def embedded_broker(kind: KafkaBrokerKind, state_dir: Path, log_dir: Path) -> BrokerServer:
    """The broker `./taskw up` starts: Tansu (in memory), or Apache Kafka on
    `state_dir`/kafka (durable: topics, records and committed offsets survive a restart)."""
    if kind == "kafka":
        return KafkaServer(state_dir / "kafka", log_path=log_dir / "kafka.log")
    return TansuBroker(log_path=log_dir / "broker.log")


def _run_until_exit(stack: ExitStack, server: ChildServer) -> str:
    """server.start(); server.stop() when `stack` unwinds, or at interpreter exit if it
    never does. The callbacks are registered first, so a start that fails half-way (or is
    interrupted) is stopped too."""
    with _stack_lock:
        atexit.register(server.stop)
        stack.callback(atexit.unregister, server.stop)  # LIFO: runs after the stop() below
        stack.callback(server.stop)
    began = time.monotonic()
    address = server.start()
    logger.info("%s ready at %s in %.2fs", server.what, mask_url(address),
                time.monotonic() - began)
    return address


@contextmanager
def _termination_exits_cleanly() -> Iterator[None]:
    """While open, SIGTERM and SIGHUP raise SystemExit (so `with` blocks and atexit run)
    instead of killing us outright. Handlers someone else installed (e.g. the local
    runtime's) are left alone, and signal handlers can only be set in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    replaced = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            replaced[sig] = signal.signal(sig, _exit_on_signal)
    try:
        yield
    finally:
        for sig, previous in replaced.items():
            signal.signal(sig, previous)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
