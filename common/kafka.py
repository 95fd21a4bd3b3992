"""confluent-kafka configuration of what a function does with Kafka: produce (consumers
and topic administration belong to the tools: tools/infra/kafka_clients.py). The process's one
producer is held by common.resources. settings.kafka_one_record_per_batch (set for Tansu,
whose high watermark counts batches, not records: docs/architecture.md, "Two brokers")
makes every batch one record."""

from __future__ import annotations

from typing import Any

from common.settings import Settings


def client_config(settings: Settings) -> dict[str, Any]:
    if not settings.kafka_bootstrap_servers:
        raise RuntimeError(
            "KAFKA_BOOTSTRAP_SERVERS is not set: run through `./taskw up` (which starts an "
            "embedded broker) or export KAFKA_BOOTSTRAP_SERVERS=host:9092"
        )
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
        "client.id": f"saga-{settings.function_name}",
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username or ""
        if settings.kafka_sasl_password is not None:
            config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    return config


def producer_config(settings: Settings) -> dict[str, Any]:
    config = client_config(settings) | {
        # Idempotent producer: a retried send is written once, in order, per partition.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 1,
        # Give up on a record after this long; the outbox relay owns the retry from then on.
        "message.timeout.ms": 30_000,
        "socket.keepalive.enable": True,
    }
    if settings.one_record_per_batch():
        config["batch.num.messages"] = 1
    return config
