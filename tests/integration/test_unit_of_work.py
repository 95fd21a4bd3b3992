"""The unit of work (common/unit_of_work.py), run by a process's resources on a real
PostgreSQL and a real broker: the events of a transaction are written in it and published
only after it committed, a retried attempt carries none of the rolled-back attempt's
events, and a failed one leaves nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from common import tables as t
from common.events import catalogue as c
from common.events.models import OrderCompleted
from common.outbox import Outbox
from common.resources import Resources
from common.settings import Settings
from common.tracing import new_trace
from common.unit_of_work import UnitOfWork
from tests.helpers import engine_of

pytestmark = pytest.mark.integration

# A real error with SQLSTATE 40001, as PostgreSQL raises it for a serialization conflict.
SERIALIZATION_FAILURE = text(
    "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$")


@pytest.fixture
def resources(saga_env: Settings) -> Iterator[Resources]:
    made = Resources(saga_env)
    yield made
    made.close()


def _emit(uow: UnitOfWork) -> str:
    order_id = uuid.uuid4()
    event = uow.outbox(new_trace()).emit(
        c.ORDER_COMPLETED, OrderCompleted(order_id=order_id, customer_id="uow"),
        partition_key=str(order_id))
    return str(event["id"])


def _outbox_rows(resources: Resources, ids: list[str]) -> dict[str, Any]:
    resources.flush_marks()  # published rows are marked in the background
    with engine_of(resources.settings).connect() as conn:
        rows = conn.execute(select(t.outbox.c.id, t.outbox.c.published_at)
                            .where(t.outbox.c.id.in_([uuid.UUID(i) for i in ids]))).all()
    return {str(row.id): row.published_at for row in rows}


def test_a_retried_attempt_writes_and_publishes_only_its_own_events(resources: Resources) -> None:
    attempts: list[str] = []

    def work(uow: UnitOfWork) -> str:
        attempts.append(_emit(uow))
        if len(attempts) == 1:
            uow.conn.execute(SERIALIZATION_FAILURE)
        return attempts[-1]

    assert resources.run_unit_of_work(c.ORDER_SAGA, work) == attempts[1]
    assert len(attempts) == 2
    rows = _outbox_rows(resources, attempts)
    assert list(rows) == [attempts[1]], "the rolled-back attempt's event was kept"
    assert rows[attempts[1]] is not None, "the committed event was not published"


def test_a_failing_unit_writes_and_publishes_nothing(resources: Resources) -> None:
    emitted: list[str] = []

    def work(uow: UnitOfWork) -> None:
        emitted.append(_emit(uow))
        raise ValueError("the handler failed")

    with pytest.raises(ValueError, match="the handler failed"):
        resources.run_unit_of_work(c.ORDER_SAGA, work)
    assert _outbox_rows(resources, emitted) == {}


def test_republished_events_go_out_after_commit_without_a_second_row(
        resources: Resources) -> None:
    # Written but left unpublished, as when the broker did not acknowledge a first delivery.
    outbox = Outbox(c.ORDER_SAGA, new_trace())
    order_id = uuid.uuid4()
    event = outbox.emit(c.ORDER_COMPLETED, OrderCompleted(order_id=order_id, customer_id="uow"),
                        partition_key=str(order_id))
    with engine_of(resources.settings).begin() as conn:
        outbox.write(conn)
    assert _outbox_rows(resources, [event["id"]]) == {event["id"]: None}

    resources.run_unit_of_work(c.ORDER_SAGA, lambda uow: uow.republish([event]))
    rows = _outbox_rows(resources, [event["id"]])
    assert list(rows) == [event["id"]] and rows[event["id"]] is not None
