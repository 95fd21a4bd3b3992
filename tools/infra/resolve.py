"""The infrastructure a process runs on: what DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS name,
or, where unset, an embedded PostgreSQL and an embedded broker that live exactly as long as
the `with infrastructure(...)` block.

What we start is stopped on leaving the block, also on an exception; if the process exits
some other way, an atexit hook stops it, and SIGTERM/SIGHUP (fatal by default, so atexit
would not run) are turned into SystemExit while the block is open. Only SIGKILL escapes
all of this: the broker then dies with us (see EmbeddedBroker), and PostgreSQL, which must
not be SIGKILLed, is found orphaned and stopped by the next start on the same data dir.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from common.settings import Settings
from tools.infra import mask_url
from tools.infra.embedded_kafka import EmbeddedBroker
from tools.infra.embedded_pg import EmbeddedPostgres

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Infra:
    database_url: str  # postgresql://... of the database the system uses
    kafka_bootstrap: str  # "" when not needed (need_kafka=False) and not configured
    embedded_db: bool
    embedded_kafka: bool

    def __repr__(self) -> str:  # the dataclass default would print the password
        return (f"Infra(database_url={mask_url(self.database_url)!r}, "
                f"kafka_bootstrap={self.kafka_bootstrap!r}, embedded_db={self.embedded_db}, "
                f"embedded_kafka={self.embedded_kafka})")


@contextmanager
def infrastructure(settings: Settings, state_dir: Path, *, database: str = "saga",
                   need_kafka: bool = True) -> Iterator[Infra]:
    """PostgreSQL and Kafka for the duration of the block.

    Embedded PostgreSQL keeps its data in `state_dir`/pgdata (so orders survive restarts)
    and gets database `database` created if missing; logs go to `state_dir`/logs. With
    `need_kafka=False` (e.g. `saga migrate`) no broker is started.
    """
    state_dir = Path(state_dir)
    log_dir = state_dir / "logs"
    with ExitStack() as stack:
        stack.enter_context(_termination_exits_cleanly())
        if settings.database_url is not None:
            database_url = settings.database_url.get_secret_value()
        else:
            pg = EmbeddedPostgres(state_dir / "pgdata", log_path=log_dir / "postgres.log")
            _run_until_exit(stack, pg.start, pg.stop, "PostgreSQL")
            database_url = pg.create_database(database)
        bootstrap = settings.kafka_bootstrap_servers or ""
        embedded_kafka = not bootstrap and need_kafka
        if embedded_kafka:
            broker = EmbeddedBroker(log_path=log_dir / "broker.log")
            bootstrap = _run_until_exit(stack, broker.start, broker.stop, "Kafka broker")
        infra = Infra(database_url=database_url, kafka_bootstrap=bootstrap,
                      embedded_db=settings.database_url is None, embedded_kafka=embedded_kafka)
        logger.info("infrastructure: database %s (%s), kafka %s (%s)",
                    mask_url(infra.database_url), _origin(infra.embedded_db),
                    infra.kafka_bootstrap or "-", _origin(infra.embedded_kafka))
        yield infra


def _origin(embedded: bool) -> str:
    return "embedded" if embedded else "given"


def _run_until_exit(stack: ExitStack, start: Callable[[], str], stop: Callable[[], None],
                    what: str) -> str:
    """start(); stop() when `stack` unwinds, or at interpreter exit if it never does."""
    atexit.register(stop)
    stack.callback(atexit.unregister, stop)  # LIFO: runs after the stop() below
    stack.callback(stop)
    began = time.monotonic()
    address = start()
    logger.info("embedded %s ready at %s in %.2fs", what, mask_url(address),
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
