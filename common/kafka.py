"""confluent-kafka configuration of what a function does with Kafka: produce. (Consumers and
topic administration belong to the tools: tools/infra/kafka_clients.py.)

Real Kafka gets conventional settings. The Tansu broker (settings.kafka_broker_kind "tansu")
gets one workaround (docs/architecture.md, "Two brokers"): one record per batch, because
its high watermark counts batches, not records.
"""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import Producer

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
    if settings.kafka_broker_kind == "tansu":
        config["batch.num.messages"] = 1
    return config


_producers: dict[str, Producer] = {}
_producers_lock = threading.Lock()


def get_producer(settings: Settings) -> Producer:
    """One producer per process and bootstrap address (confluent-kafka producers are
    thread-safe and expensive to create). Created on first use, never at import."""
    key = settings.kafka_bootstrap_servers or ""
    with _producers_lock:
        producer = _producers.get(key)
        if producer is None:
            producer = Producer(producer_config(settings))
            _producers[key] = producer
        return producer


def close_producers(timeout: float = 5.0) -> None:
    with _producers_lock:
        for producer in _producers.values():
            producer.flush(timeout)
        _producers.clear()
