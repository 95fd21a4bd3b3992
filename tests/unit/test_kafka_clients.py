"""The clients' configuration per broker kind: Tansu's workarounds apply to Tansu only
(docs/architecture.md, "Two brokers"); the settings win over both."""

from __future__ import annotations

from common.kafka import producer_config
from tools.infra.kafka_clients import consumer_config
from tools.settings import LocalSettings


def _settings(**values: object) -> LocalSettings:
    return LocalSettings.model_validate({"kafka_bootstrap_servers": "k:9092", **values})


def test_tansu_workarounds_stay_tansus() -> None:
    tansu, kafka = _settings(kafka_broker_kind="tansu"), _settings(kafka_broker_kind="kafka")
    assert producer_config(tansu)["batch.num.messages"] == 1
    assert "batch.num.messages" not in producer_config(kafka)
    for settings in (tansu, kafka):
        config = producer_config(settings)
        assert config["enable.idempotence"] is True and config["acks"] == "all"
    on_tansu = consumer_config(tansu, "g", "earliest")
    assert (on_tansu["session.timeout.ms"], on_tansu["heartbeat.interval.ms"],
            on_tansu["fetch.wait.max.ms"]) == (6000, 500, 20)
    on_kafka = consumer_config(kafka, "g", "earliest")
    assert (on_kafka["session.timeout.ms"], on_kafka["fetch.wait.max.ms"]) == (10_000, 500)
    assert "heartbeat.interval.ms" not in on_kafka  # librdkafka's 3 s


def test_the_settings_win() -> None:
    settings = _settings(kafka_broker_kind="kafka", kafka_fetch_wait_ms=50,
                         kafka_session_timeout_ms=6000)
    config = consumer_config(settings, "g", "latest")
    assert (config["fetch.wait.max.ms"], config["session.timeout.ms"],
            config["heartbeat.interval.ms"], config["auto.offset.reset"]) == (50, 6000, 600,
                                                                                "latest")
