"""A refused setting is one line in the environment's words: the variable a person set
(derived from the settings class), the value (never a secret's) and what is allowed."""

from __future__ import annotations

import pytest
from pydantic import Field, SecretStr

from common.settings import Settings, get_settings, read_settings
from common.settings_errors import SettingsError, env_name
from tools.settings import LocalSettings, get_local_settings


def refusal(monkeypatch: pytest.MonkeyPatch, **environ: str) -> str:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        get_local_settings()
    message = str(refused.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("variable", "value", "line"), [
    ("SAGA_API_PORT", "abc", "SAGA_API_PORT=abc: must be a whole number from 1 to 65535"),
    ("SAGA_BROKER", "redpanda", "SAGA_BROKER=redpanda: must be one of embedded, kafka"),
    ("SAGA_PROFILE", "prod", "SAGA_PROFILE=prod: must be one of local, production"),
    ("SAGA_IDLE_SCALE_TO_ZERO_S", "0", "SAGA_IDLE_SCALE_TO_ZERO_S=0: must be a number, "
     "greater than 0"),
    ("SAGA_KAFKA_BROKER_KIND", "redpanda", "SAGA_KAFKA_BROKER_KIND=redpanda: must be one of "
     "kafka, tansu"),
    ("THREADS", "0", "THREADS=0: must be a whole number, at least 1"),
])
def test_the_line_names_variable_value_and_what_is_allowed(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str, line: str) -> None:
    assert refusal(monkeypatch, **{variable: value}) == line


def test_the_alias_that_was_set_is_the_one_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THREADS", raising=False)
    assert refusal(monkeypatch, SAGA_THREADS="many").startswith("SAGA_THREADS=many: ")
    assert env_name(Settings, "database_url", {}) == "DATABASE_URL"
    assert env_name(Settings, "database_url", {"SAGA_DATABASE_URL": "x"}) == "SAGA_DATABASE_URL"
    assert env_name(LocalSettings, "api_port", {}) == "SAGA_API_PORT"


def test_every_problem_is_on_the_same_line(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, SAGA_API_PORT="abc", SAGA_BROKER="redpanda")
    assert "SAGA_API_PORT=abc: " in message and "SAGA_BROKER=redpanda: " in message


class _StrictSecret(Settings):
    jwt_secret: SecretStr | None = Field(default=None, min_length=32)
    jwt_issuer: str = Field(default="saga-local", min_length=1)


def test_a_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGA_JWT_SECRET", "hunter2-too-short")
    with pytest.raises(SettingsError) as refused:
        read_settings(_StrictSecret)
    assert str(refused.value) == ("SAGA_JWT_SECRET (value hidden): must be at least 32 "
                                  "characters long")
    assert "hunter2" not in str(refused.value)
    monkeypatch.delenv("SAGA_JWT_SECRET")
    monkeypatch.setenv("SAGA_JWT_ISSUER", "")
    with pytest.raises(SettingsError) as refused:
        read_settings(_StrictSecret)
    assert str(refused.value) == "SAGA_JWT_ISSUER=: must not be empty"


def test_the_deployed_settings_refuse_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGA_PAYMENT_WINDOW_S", "soon")
    with pytest.raises(SettingsError) as refused:
        get_settings()
    assert str(refused.value) == ("SAGA_PAYMENT_WINDOW_S=soon: must be a whole number, "
                                  "at least 1")

