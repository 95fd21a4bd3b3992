"""Settings only the tools read (the local runtime, the bench, the operator CLI): the
deployed `Settings` plus what a function in a pod never needs. Same environment, same
SAGA_ prefix, so one `.env` or shell configures both."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from common.settings import Settings, read_settings

# What `./taskw up` starts when KAFKA_BOOTSTRAP_SERVERS is unset: Tansu (memory only, needs
# nothing but the Python wheel) or Apache Kafka (durable, needs Java 17+ and Maven).
EmbeddedBroker = Literal["embedded", "kafka"]


class LocalSettings(Settings):
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


def get_local_settings() -> LocalSettings:
    """The tools' settings, read from the environment now. Not cached: a command reads them
    once, and a test that changes the environment between commands sees its change. A refused
    value raises SettingsError (common/settings_errors.py): one line."""
    return read_settings(LocalSettings)
