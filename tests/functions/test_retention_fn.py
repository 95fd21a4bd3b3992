"""The retention function (PingSource) as deployed: a ping deletes what is past retention and
logs the counts; SAGA_RETENTION_DRY_RUN makes it count only; other event types are refused
with 4xx; its manifests tick it every ten minutes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from common import tables as t
from common.events import catalogue as c
from common.settings import Settings
from tests.functions.saga_support import (
    binary_headers,
    check_service,
    ping,
    post_raw,
    rows,
    sql,
)
from tests.helpers import event_function_client, post_event
from tools import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _broker_started_now(saga_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As the local runtime says when it runs Tansu (the session's broker may be one): every
    row these tests age by days was received before it started. Their rows go afterwards."""
    monkeypatch.setenv("SAGA_BROKER_STARTED_AT", datetime.now(UTC).isoformat())
    yield
    sql(saga_env, "DELETE FROM messaging.inbox WHERE consumer = 'retention-test'")


def started() -> Any:
    """A retention process started now: its main.py reads the environment as it is then
    (saga_support's cached client would keep what the first test set)."""
    return event_function_client(c.RETENTION)


def _inbox_row(settings: Settings, days_ago: float) -> str:
    """An inbox row of a consumer the other tests never use, received `days_ago`."""
    event_id = str(uuid.uuid4())
    sql(settings, "INSERT INTO messaging.inbox (consumer, event_id, event_type, received_at) "
                  "VALUES ('retention-test', :e, 't', now() - :d * interval '1 day')",
        e=event_id, d=days_ago)
    return event_id


def _ran(caplog: pytest.LogCaptureFixture, tick_id: str) -> logging.LogRecord:
    [line] = [r for r in caplog.records if getattr(r, "event.action", "") == "saga.retention.ran"
              and getattr(r, "cloudevents.id", None) == tick_id]
    return line


def test_a_ping_deletes_what_is_past_retention_and_logs_the_counts(
    saga_env: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    old, fresh = _inbox_row(saga_env, 40), _inbox_row(saga_env, 1)
    event = ping()
    assert post_event(started(), event).status_code == 200

    left = {r.event_id for r in rows(saga_env, t.inbox, consumer="retention-test")}
    assert left == {fresh}
    line = _ran(caplog, event["id"])
    assert int(getattr(line, "labels.inbox")) >= 1
    assert getattr(line, "labels.dry_run") == "0"
    assert {"labels.outbox", "labels.idempotency_keys", "labels.dead_letters"} <= set(
        vars(line))
    assert old not in left


def test_the_dry_run_setting_counts_and_deletes_nothing(
    saga_env: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("SAGA_RETENTION_DRY_RUN", "true")
    old = _inbox_row(saga_env, 40)
    event = ping()
    assert post_event(started(), event).status_code == 200
    line = _ran(caplog, event["id"])
    assert getattr(line, "labels.dry_run") == "1"
    assert int(getattr(line, "labels.inbox")) >= 1
    assert [r.event_id for r in rows(saga_env, t.inbox, consumer="retention-test")] == [old]
    monkeypatch.delenv("SAGA_RETENTION_DRY_RUN")
    assert post_event(started(), ping()).status_code == 200
    assert rows(saga_env, t.inbox, consumer="retention-test") == []


def test_other_event_types_are_refused_with_4xx(saga_env: Settings) -> None:
    old = _inbox_row(saga_env, 40)
    response = post_raw(c.RETENTION, binary_headers(ping(type="shop.order.created.v1")),
                        b'{"job": "x"}')
    assert response.status_code == 400
    assert [r.event_id for r in rows(saga_env, t.inbox, consumer="retention-test")] == [old]


def test_manifests_run_it_every_ten_minutes() -> None:
    check_service(c.RETENTION)
    ping_source = yaml.safe_load((REPO_ROOT / "knative/retention-ping.yaml").read_text())
    assert (ping_source["apiVersion"], ping_source["kind"]) == (
        "sources.knative.dev/v1", "PingSource")
    assert ping_source["spec"]["schedule"] == "*/10 * * * *"
    assert ping_source["spec"]["sink"]["ref"] == {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": c.RETENTION}
