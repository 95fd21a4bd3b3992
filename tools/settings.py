"""Settings only the tools read (the local runtime, the bench, the operator CLI): the
deployed `Settings` plus what a function in a pod never needs. Same environment, same
SAGA_ prefix, so one `.env` or shell configures both."""

from __future__ import annotations

from pydantic import Field

from common.settings import Settings


class LocalSettings(Settings):
    api_port: int = Field(default=8080, ge=1, le=65535,
                          description="Where `./taskw up` serves the API.")
    idle_scale_to_zero_s: float = Field(
        default=30.0, gt=0,
        description="Idle time after which a min-scale 0 function is stopped locally.")
    topic_partitions: int | None = Field(
        default=None, ge=1,
        description="Partitions of the topics the local runtime creates; unset: 3 on Kafka, 2 "
        "on the embedded broker (docs/benchmarks.md: each partition costs it CPU even idle).",
    )
    kafka_fetch_wait_ms: int | None = Field(
        default=None, ge=1, le=1000,
        description="Consumers' fetch.wait.max.ms; unset: 50 on Kafka, 20 on the embedded broker.",
    )


def get_local_settings() -> LocalSettings:
    """The tools' settings, read from the environment now. Not cached: a command reads them
    once, and a test that changes the environment between commands sees its change."""
    return LocalSettings()
