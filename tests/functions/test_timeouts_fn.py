"""The timeouts function (PingSource): cancels orders whose payment window has passed, leaves
the others, skips orders another transaction holds, and reports stuck sagas."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import select

from common import tables as t
from common.events import catalogue as c
from common.order_state import Status
from common.settings import Settings
from common.tracing import parse_traceparent
from tests.functions.saga_support import (
    binary_headers,
    check_ping_source,
    check_service,
    deliver,
    new_order,
    ping,
    post_raw,
    read_order,
    rows,
    sql,
)
from tests.helpers import engine_of, read_topic

pytestmark = pytest.mark.integration


def _expire(settings: Settings, order_id: uuid.UUID) -> None:
    sql(settings, "UPDATE orders.orders SET payment_deadline = now() - interval '1 second' "
                  "WHERE id = :id", id=order_id)


def test_expired_order_is_cancelled_and_a_fresh_one_left(
    saga_env: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    expired = new_order(saga_env, mode="confirm", status=Status.AWAITING_PAYMENT)
    fresh = new_order(saga_env, mode="confirm", status=Status.AWAITING_PAYMENT)
    _expire(saga_env, expired.id)
    tick = ping()
    assert deliver("timeouts", tick).status_code == 200

    now = read_order(saga_env, expired.id)
    assert (now.status, now.reason) == (Status.CANCELLED, "payment_timeout")
    assert read_order(saga_env, fresh.id).status == Status.AWAITING_PAYMENT
    [history] = [h for h in rows(saga_env, t.order_status_history, order_id=expired.id)
                 if h.to_status == Status.CANCELLED]
    assert history.actor == c.TIMEOUTS

    [row] = rows(saga_env, t.outbox, partition_key=str(expired.id), producer=c.TIMEOUTS)
    assert row.event_type == c.ORDER_CANCELLED
    assert row.data["previous_status"] == "AWAITING_PAYMENT"
    # The saga acting on its own: the cancellation continues the order's trace, in a span
    # of its own (docs/observability.md, "One order, its traces").
    caused = parse_traceparent(row.attributes["traceparent"])
    assert expired.trace is not None and caused is not None
    assert caused.trace_id == expired.trace.trace_id
    assert caused.span_id != expired.trace.span_id
    published = read_topic(saga_env, c.ORDER_CANCELLED, lambda e: e["id"] == str(row.id))
    assert published["subject"] == str(expired.id)
    assert rows(saga_env, t.outbox, id=row.id)[0].published_at is not None

    [line] = [r for r in caplog.records if getattr(r, "event.action", "") == "saga.timeouts.ran"
              and getattr(r, "cloudevents.id", None) == tick["id"]]
    assert int(getattr(line, "labels.cancelled")) >= 1

    # The next tick finds nothing more to do for these two.
    assert deliver("timeouts", ping()).status_code == 200
    assert read_order(saga_env, fresh.id).status == Status.AWAITING_PAYMENT
    assert len(rows(saga_env, t.outbox, partition_key=str(expired.id))) == 1


def test_an_order_held_by_another_transaction_is_skipped_not_waited_for(
    saga_env: Settings,
) -> None:
    held = new_order(saga_env, mode="confirm", status=Status.AWAITING_PAYMENT)
    _expire(saga_env, held.id)
    with engine_of(saga_env).connect() as other:
        # e.g. the API paying it right now, under the order's row lock. Were the sweep to
        # wait for it, the request would fail on the statement timeout instead.
        other.execute(select(t.orders.c.id).where(t.orders.c.id == held.id).with_for_update())
        assert deliver("timeouts", ping()).status_code == 200
        assert read_order_unlocked(saga_env, held.id) == Status.AWAITING_PAYMENT
        other.rollback()
    assert deliver("timeouts", ping()).status_code == 200
    assert read_order(saga_env, held.id).status == Status.CANCELLED


def read_order_unlocked(settings: Settings, order_id: uuid.UUID) -> str:
    return str(rows(settings, t.orders, id=order_id)[0].status)


def test_stuck_sagas_are_reported(saga_env: Settings, caplog: pytest.LogCaptureFixture) -> None:
    stuck = new_order(saga_env, status=Status.PAID)
    done = new_order(saga_env, status=Status.COMPLETED)
    for order in (stuck, done):
        sql(saga_env, "UPDATE orders.orders SET updated_at = now() - make_interval(secs => :s) "
                      "WHERE id = :id", s=saga_env.stuck_after_s + 60, id=order.id)
    caplog.set_level(logging.INFO)
    assert deliver("timeouts", ping()).status_code == 200
    lines = [r for r in caplog.records if getattr(r, "event.action", "") == "saga.stuck"]
    [line] = [r for r in lines if getattr(r, "labels.order_id") == str(stuck.id)]
    assert line.levelno == logging.WARNING
    assert getattr(line, "labels.order_status") == "PAID"
    assert not [r for r in lines if getattr(r, "labels.order_id") == str(done.id)]
    assert read_order(saga_env, stuck.id).status == Status.PAID  # reported, not touched


def test_other_event_types_are_refused_with_4xx(saga_env: Settings) -> None:
    expired = new_order(saga_env, mode="confirm", status=Status.AWAITING_PAYMENT)
    _expire(saga_env, expired.id)
    tick = ping(type="shop.order.created.v1")
    response = post_raw("timeouts", binary_headers(tick), b'{"job": "x"}')
    assert response.status_code == 400
    headers = binary_headers(ping())
    headers.pop("ce-source")
    response = post_raw("timeouts", headers, b"{}")  # not a CloudEvent at all
    assert 400 <= response.status_code < 500
    assert response.status_code not in (404, 408, 409, 429)
    assert read_order(saga_env, expired.id).status == Status.AWAITING_PAYMENT
    sql(saga_env, "UPDATE orders.orders SET payment_deadline = now() + interval '1 hour' "
                  "WHERE id = :id", id=expired.id)  # keep it out of later sweeps


def test_manifests_run_it_every_minute() -> None:
    check_service(c.TIMEOUTS)
    check_ping_source(c.TIMEOUTS)
