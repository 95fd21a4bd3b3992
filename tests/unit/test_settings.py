"""Settings read standard names as they are and everything else with the SAGA_ prefix."""

from __future__ import annotations

import pytest

from common.settings import Settings, get_settings, to_sqlalchemy_url


def test_standard_names_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@db:5432/shop")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("SAGA_PAYMENT_WINDOW_S", "42")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.payment_window_s == 42
    assert settings.sqlalchemy_url() == "postgresql+psycopg://u:hunter2@db:5432/shop"
    assert "hunter2" not in repr(settings)  # the URL is a SecretStr


def test_unset_database_url_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        Settings().sqlalchemy_url()


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGA_PAYMENT_WINDOW_S", "0")
    with pytest.raises(ValueError, match="payment_window_s"):
        Settings()


def test_threads_is_read_as_gunicorn_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADS", "2")
    assert Settings().threads == 2
    monkeypatch.setenv("THREADS", "0")
    with pytest.raises(ValueError, match="THREADS"):
        Settings()


def test_knative_service_name_is_the_function_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGA_FUNCTION_NAME", raising=False)
    monkeypatch.setenv("K_SERVICE", "inventory")
    assert Settings().function_name == "inventory"


def test_get_settings_reads_the_environment_as_it_is_now(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGA_PAYMENT_WINDOW_S", "7")
    first = get_settings()
    monkeypatch.setenv("SAGA_PAYMENT_WINDOW_S", "8")
    assert (first.payment_window_s, get_settings().payment_window_s) == (7, 8)


def test_url_schemes() -> None:
    assert to_sqlalchemy_url("postgres://h/db") == "postgresql+psycopg://h/db"
    with pytest.raises(ValueError, match="postgresql://"):
        to_sqlalchemy_url("mysql://h/db")


def test_the_broker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.settings import LocalSettings, broker_env

    for name in ("SAGA_BROKER", "SAGA_KAFKA_BROKER_KIND", "SAGA_KAFKA_ONE_RECORD_PER_BATCH",
                 "SAGA_BROKER_ENFORCES_RETENTION"):
        monkeypatch.delenv(name, raising=False)
    # Defaults: `saga up` starts Tansu; clients treat a broker as Apache Kafka.
    assert LocalSettings().broker == "embedded"
    assert LocalSettings().kafka_broker_kind == "kafka"
    assert not LocalSettings().one_record_per_batch() and not Settings().one_record_per_batch()
    assert LocalSettings().enforces_retention() and Settings().enforces_retention()
    monkeypatch.setenv("SAGA_BROKER", "kafka")
    monkeypatch.setenv("SAGA_KAFKA_BROKER_KIND", "tansu")
    assert LocalSettings().broker == "kafka"
    assert LocalSettings().kafka_broker_kind == "tansu"
    # Tansu's workarounds: the tools' clients see the kind; a function, the knobs it is given.
    assert LocalSettings().one_record_per_batch() and not Settings().one_record_per_batch()
    assert not LocalSettings().enforces_retention() and Settings().enforces_retention()
    for name, value in broker_env("tansu").items():
        monkeypatch.setenv(name, value)
    assert Settings().one_record_per_batch() and not Settings().enforces_retention()
    for name, value in broker_env("kafka").items():
        monkeypatch.setenv(name, value)
    assert not Settings().one_record_per_batch() and Settings().enforces_retention()
    assert not LocalSettings().one_record_per_batch() and LocalSettings().enforces_retention()
    monkeypatch.setenv("SAGA_KAFKA_ONE_RECORD_PER_BATCH", "true")
    assert Settings().one_record_per_batch()
    monkeypatch.setenv("SAGA_BROKER", "redpanda")
    with pytest.raises(ValueError, match="broker"):
        LocalSettings()
