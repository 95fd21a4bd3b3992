"""The pure parts of the reachability probes (tools/infra/reach.py) and of the librdkafka
log summary (tools/infra/kafka_clients.py); the probes themselves run against real closed ports
and servers in tests/integration/test_cli_unreachable.py."""

from __future__ import annotations

import logging

import pytest

from common.settings import Settings
from common.settings_errors import SettingsError
from tools.infra.kafka_clients import KAFKA_LOG, kafka_log_tally, tool_config
from tools.infra.reach import bootstrap_addresses, check_database, pg_reason, setting_origin


def test_bootstrap_addresses() -> None:
    assert bootstrap_addresses("k1:9092, k2:19092") == [("k1", 9092), ("k2", 19092)]
    assert bootstrap_addresses("PLAINTEXT://k1:9093,[::1]:9094,k3") == [
        ("k1", 9093), ("::1", 9094), ("k3", 9092)]
    assert bootstrap_addresses(" , ") == []


def test_pg_reason_is_libpqs_last_reason() -> None:
    refused = ('connection failed: connection to server at "127.0.0.1", port 2 failed: '
               "Connection refused\n\tIs the server running on that host and accepting "
               "TCP/IP connections?")
    assert pg_reason(refused) == "connection refused"
    login = ('connection failed: connection to server at "127.0.0.1", port 5432 failed: '
             'FATAL:  password authentication failed for user "postgres"')
    assert pg_reason(login) == 'password authentication failed for user "postgres"'
    two = ("Multiple connection attempts failed. All failures were:\n- host: 'localhost', "
           "port: '2', hostaddr: '::1': connection failed: connection to server at \"::1\", "
           "port 2 failed: Connection refused\n- host: 'localhost', port: '2', hostaddr: "
           "'127.0.0.1': connection failed: connection to server at \"127.0.0.1\", port 2 "
           "failed: Connection refused")
    assert pg_reason(two) == "connection refused"


@pytest.mark.parametrize("url", ["mysql://u:hunter2@h/db", "hunter2"])
def test_what_is_no_postgresql_url_is_a_bad_setting_never_echoed(url: str) -> None:
    with pytest.raises(SettingsError) as refused:
        check_database(url, *setting_origin("DATABASE_URL"))
    assert str(refused.value) == ("DATABASE_URL (value hidden): must be a postgresql:// URL, "
                                  "e.g. postgresql://user:password@host:5432/db")


def test_an_option_is_not_told_to_be_unset() -> None:
    assert setting_origin("DATABASE_URL") == (
        "from DATABASE_URL",
        "check DATABASE_URL, or unset it and start the local stack with ./taskw up")
    assert setting_origin("--database-url") == ("from --database-url", "check --database-url")


def test_librdkafka_lines_are_routed_and_summarised() -> None:
    config = tool_config(Settings(KAFKA_BOOTSTRAP_SERVERS="k1:9092"))
    assert config["logger"] is KAFKA_LOG
    with kafka_log_tally() as tally:
        assert tally.summary() is None
        KAFKA_LOG.info("CONNECT [rdkafka#consumer-1] [thrd:main]: connecting")  # not counted
        for _ in range(3):
            KAFKA_LOG.error("FAIL [rdkafka#consumer-1] [thrd:k1:9092/bootstrap]: k1:9092/"
                            "bootstrap: Connect to ipv4#10.0.0.1:9092 failed: Connection "
                            "refused")
    assert tally.summary() == ("the Kafka client logged 3 problem(s), the last: k1:9092/"
                               "bootstrap: Connect to ipv4#10.0.0.1:9092 failed: Connection "
                               "refused")
    assert KAFKA_LOG.propagate and tally not in KAFKA_LOG.handlers
    assert logging.getLogger("saga.kafka") is KAFKA_LOG
