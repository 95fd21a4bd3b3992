"""The outbox-relay function (PingSource): publishes rows their step left unpublished once
they are old enough, batch after batch, and leaves rows that are still in flight."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import pytest
from cloudevents.http import CloudEvent

from common import tables as t
from common.events import catalogue as c
from common.events.models import OrderCompleted
from common.outbox import Outbox
from common.settings import Settings
from common.tracing import new_trace
from tests.functions.saga_support import (
    binary_headers,
    check_ping_source,
    check_service,
    deliver,
    ping,
    post_raw,
    rows,
    sql,
)
from tests.helpers import read_topic, transaction_on

pytestmark = pytest.mark.integration


def _stranded(settings: Settings, count: int, *, age_s: int) -> list[CloudEvent]:
    """Outbox rows as a step leaves them when the broker is down, `age_s` seconds old."""
    outbox = Outbox("relay-test", new_trace(), caused_by=str(uuid.uuid4()))
    for _ in range(count):
        order_id = uuid.uuid4()
        outbox.emit(c.ORDER_COMPLETED, OrderCompleted(order_id=order_id, customer_id="bob"),
                    partition_key=str(order_id))
    with transaction_on(settings) as tx:
        outbox.write(tx)
    sql(settings, "UPDATE messaging.outbox SET created_at = now() - make_interval(secs => :s) "
                  "WHERE caused_by = :cause", s=age_s, cause=outbox.caused_by)
    return outbox.events


def _published_at(settings: Settings, ev: CloudEvent) -> object:
    return rows(settings, t.outbox, id=uuid.UUID(ev["id"]))[0].published_at


def _same_id(want: CloudEvent) -> Callable[[CloudEvent], bool]:
    return lambda got: bool(got["id"] == want["id"])


def test_old_rows_are_published_in_batches_and_fresh_ones_left(
    saga_env: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("functions.outbox_relay.drain.BATCH", 5)
    old = _stranded(saga_env, 12, age_s=120)
    fresh = _stranded(saga_env, 1, age_s=0)
    caplog.set_level(logging.INFO)
    tick = ping()
    assert deliver("outbox-relay", tick).status_code == 200

    assert all(_published_at(saga_env, ev) is not None for ev in old)
    assert _published_at(saga_env, fresh[0]) is None  # maybe its step is publishing it now
    for ev in (old[0], old[-1]):
        received = read_topic(saga_env, c.ORDER_COMPLETED, _same_id(ev))
        assert received["partitionkey"] == ev["partitionkey"]
        assert received.get_data() == ev.get_data()
    [line] = [r for r in caplog.records if getattr(r, "cloudevents.id", None) == tick["id"]]
    assert getattr(line, "event.action") == "saga.outbox-relay.ran"
    assert int(getattr(line, "labels.published")) >= 12
    assert int(getattr(line, "labels.batches")) >= 3  # 5 + 5 + 2: stops on the short batch

    # Nothing is published twice by the next tick.
    marks = [_published_at(saga_env, ev) for ev in old]
    assert deliver("outbox-relay", ping()).status_code == 200
    assert [_published_at(saga_env, ev) for ev in old] == marks


def test_other_event_types_are_refused_with_4xx(saga_env: Settings) -> None:
    stranded = _stranded(saga_env, 1, age_s=120)
    response = post_raw("outbox-relay", binary_headers(ping(type="shop.order.paid.v1")), b"{}")
    assert response.status_code == 400
    assert _published_at(saga_env, stranded[0]) is None
    sql(saga_env, "UPDATE messaging.outbox SET published_at = now() WHERE id = :id",
        id=uuid.UUID(stranded[0]["id"]))  # keep it from later relays' counts


def test_manifests_run_it_every_minute() -> None:
    check_service(c.OUTBOX_RELAY)
    check_ping_source(c.OUTBOX_RELAY)
