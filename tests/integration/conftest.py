"""Fixtures of the integration tests, beside the session's (tests/conftest.py:
pg_server_url, kafka_bootstrap, fresh_database, migrated_database, saga_env): `settings`,
the tools' settings on the session's broker. runtime_support.py has the echo function and
the manifest writers the runtime's tests share."""

from __future__ import annotations

import pytest

from tests.conftest import session_broker_kind
from tools.settings import LocalSettings


@pytest.fixture(scope="module")
def settings(kafka_bootstrap: str) -> LocalSettings:
    """The tools' settings on the session's broker (Tansu, or Apache Kafka with --broker
    kafka); a test module that needs more overrides it from this one."""
    return LocalSettings(kafka_bootstrap_servers=kafka_bootstrap,
                         kafka_broker_kind=session_broker_kind())
