"""Settings only the tools read (the local runtime, the bench, the operator CLI): the
deployed `Settings` plus what a function in a pod never needs. Same environment, same
SAGA_ prefix, so one `.env` or shell configures both."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from common.auth import ConfigError
from common.settings import Settings, read_settings

# What `./taskw up` starts when KAFKA_BOOTSTRAP_SERVERS is unset: Tansu (memory only, needs
# nothing but the Python wheel) or Apache Kafka (durable, needs Java 17+ and Maven).
EmbeddedBroker = Literal["embedded", "kafka"]
# What a client talks to: Apache Kafka, or Tansu, whose quirks the tools work around (and
# the functions the tools start on it: broker_env).
KafkaBrokerKind = Literal["kafka", "tansu"]
Profile = Literal["local", "production"]


class LocalSettings(Settings):
    profile: Profile = Field(
        default="local",
        description="local: the tools make a JWT secret in SAGA_STATE_DIR/jwt-secret when "
        "SAGA_JWT_SECRET is unset; production: they require one.")
    state_dir: Path = Field(default=Path(".local"), description="Local runtime state and logs.")
    kafka_broker_kind: KafkaBrokerKind = Field(
        default="kafka",
        description="What kind of broker the clients talk to: Apache Kafka (any real cluster, "
        "and the local runtime's `--broker kafka`), or the Tansu broker the local runtime "
        "starts by default, whose quirks the clients work around (docs/architecture.md, "
        "'Two brokers'). The local runtime sets it for the processes it starts.",
    )
    api_port: int = Field(default=8080, ge=1, le=65535,
                          description="Where `./taskw up` serves the API.")
    console_port: int = Field(
        default=8081, ge=1, le=65535,
        description="Where `./taskw up` serves the operators' console (/console); when the "
        "port is taken it picks a free one and its banner says which.")
    idle_scale_to_zero_s: float = Field(
        default=30.0, gt=0,
        description="Idle time after which a min-scale 0 function is stopped locally.")
    broker: EmbeddedBroker = Field(
        default="embedded",
        description="The broker `./taskw up` starts when KAFKA_BOOTSTRAP_SERVERS is unset: "
        "embedded (Tansu, in memory) or kafka (Apache Kafka 4 in KRaft mode, its logs under "
        "SAGA_STATE_DIR/kafka; needs Java 17+ and Maven). `saga up --broker` wins.",
    )
    topic_partitions: int | None = Field(
        default=None, ge=1,
        description="Partitions of the topics the local runtime creates; unset: as "
        "kafka-sources/topics/ says on Kafka, 2 on Tansu (docs/benchmarks.md: each partition "
        "costs it CPU even idle).",
    )
    kafka_fetch_wait_ms: int | None = Field(
        default=None, ge=1, le=1000,
        description="Consumers' fetch.wait.max.ms; unset: 500 on Kafka, 20 on Tansu.",
    )
    kafka_session_timeout_ms: int | None = Field(
        default=None, ge=1000, le=300_000,
        description="The KafkaSource emulation's session.timeout.ms: how long a consumer that "
        "died without leaving (SIGKILL) keeps its partitions; unset: 10 s on Kafka, 6 s on "
        "Tansu.",
    )
    delivery_backoff_scale: float = Field(
        default=1.0, gt=0, le=1,
        description="Multiplies every KafkaSource's backoffDelay in the local runtime; 1: as "
        "kafka-sources/ says (about 100 s of retries before a dead letter). Tests that walk "
        "an event to the dead-letter topic set it lower (0.01: about 1 s).",
    )


    def one_record_per_batch(self) -> bool:
        return super().one_record_per_batch() or self.kafka_broker_kind == "tansu"

    def enforces_retention(self) -> bool:
        return super().enforces_retention() and self.kafka_broker_kind != "tansu"


def broker_env(kind: KafkaBrokerKind) -> dict[str, str]:
    """What a process the tools start on a broker of `kind` is told: the kind, for the tools'
    clients, and the deployed settings a function reads instead (Tansu: one record per batch,
    no retention enforced: docs/architecture.md, 'Two brokers')."""
    tansu = kind == "tansu"
    return {"SAGA_KAFKA_BROKER_KIND": kind,
            "SAGA_KAFKA_ONE_RECORD_PER_BATCH": str(tansu).lower(),
            "SAGA_BROKER_ENFORCES_RETENTION": str(not tansu).lower()}


_secret_lock = threading.Lock()


def local_jwt_secret(settings: LocalSettings) -> str:
    """The HS256 secret: SAGA_JWT_SECRET, or in the local profile a random one kept in
    <state_dir>/jwt-secret (created once, mode 0600). Never a built-in value."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.profile != "local":
        raise ConfigError("set SAGA_JWT_SECRET (or SAGA_JWKS_URL) outside the local profile")
    path = Path(settings.state_dir) / "jwt-secret"
    with _secret_lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def with_jwt_secret(settings: LocalSettings) -> LocalSettings:
    """`settings` with their JWT secret: SAGA_JWT_SECRET, or the local profile's own."""
    if settings.jwt_secret is not None:
        return settings
    return settings.model_copy(update={"jwt_secret": SecretStr(local_jwt_secret(settings))})


def get_local_settings() -> LocalSettings:
    """The tools' settings, read from the environment now. Not cached: a command reads them
    once, and a test that changes the environment between commands sees its change. A refused
    value raises SettingsError (common/settings_errors.py): one line."""
    return read_settings(LocalSettings)
