"""The world an event bench runs in: an embedded PostgreSQL (migrated) and broker (topics
created) of its own, and a shop in it: SKUs with plenty of stock and customers whose
wallets hold enough for every order."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from common.auth import CUSTOMER_ROLE, issue_token
from common.events import catalogue
from common.migrate import upgrade
from tools.infra.kafka_clients import ensure_topics
from tools.infra.resolve import embedded_broker
from tools.loadgen.database import BenchDatabase
from tools.settings import KafkaBrokerKind, LocalSettings, broker_env


@dataclass(frozen=True)
class World:
    database_url: str
    bootstrap: str
    jwt_secret: str
    state_dir: Path
    postgres_pid: int | None
    broker_pid: int | None
    broker_kind: KafkaBrokerKind

    def env(self) -> dict[str, str]:
        """What the local runtime gives a function (tools/runtime/up.py)."""
        return {"DATABASE_URL": self.database_url, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                **broker_env(self.broker_kind), "SAGA_PROFILE": "local",
                "SAGA_STATE_DIR": str(self.state_dir), "SAGA_JWT_SECRET": self.jwt_secret}

    def settings(self) -> LocalSettings:
        return LocalSettings().model_copy(update={
            "database_url": SecretStr(self.database_url), "kafka_bootstrap_servers": self.bootstrap,
            "kafka_broker_kind": self.broker_kind, "jwt_secret": SecretStr(self.jwt_secret),
            "state_dir": self.state_dir})


@contextlib.contextmanager
def world(broker_kind: KafkaBrokerKind = "tansu") -> Iterator[World]:
    """A fresh PostgreSQL and broker (Tansu, or Apache Kafka), migrated and with every
    catalogued topic."""
    state_dir = Path(tempfile.mkdtemp(prefix="saga-bench-event-"))
    server = embedded_broker(broker_kind, state_dir, state_dir / "logs")
    with BenchDatabase() as database, server as broker:
        found = World(database.url, broker.bootstrap, secrets.token_urlsafe(32), state_dir,
                      database.pid, broker.pid, broker_kind)
        upgrade(found.database_url)
        ensure_topics(found.settings(), sorted(catalogue.topics()))
        # This process plays the functions in-process: the same settings they read, for
        # as long as this world lasts (a saga bench run afterwards starts its own).
        saved = dict(os.environ)
        os.environ.update(found.env())
        try:
            yield found
        finally:
            os.environ.clear()
            os.environ.update(saved)


def customer_tokens(world: World, count: int) -> list[str]:
    settings = world.settings()
    return [issue_token(settings, f"bench-{i:03d}-{secrets.token_hex(2)}",
                        roles=[CUSTOMER_ROLE], ttl_s=24 * 3600) for i in range(count)]
