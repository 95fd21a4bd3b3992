"""The unit of work (common/unit_of_work.py), run by a process's resources on a real
PostgreSQL and a real broker: the events of a transaction are written in it and published
only after it committed, a retried attempt carries none of the rolled-back attempt's
events, and a failed one leaves nothing; psycopg's errors answer 503 where a retry may cure
them, and a pool whose connections PostgreSQL ended reconnects after one failure."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from common import tables as t
from common.events import catalogue as c
from common.events.models import OrderCompleted
from common.outbox import Outbox
from common.problems import fault
from common.resources import Resources
from common.serving import probes
from common.settings import Settings
from common.tracing import new_trace
from common.unit_of_work import UnitOfWork
from tests.helpers import engine_of, transaction_on

pytestmark = pytest.mark.integration

# A real error with SQLSTATE 40001, as PostgreSQL raises it for a serialization conflict.
SERIALIZATION_FAILURE = (
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
            uow.tx.conn.execute(SERIALIZATION_FAILURE)
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
    with transaction_on(resources.settings) as tx:
        outbox.write(tx)
    assert _outbox_rows(resources, [event["id"]]) == {event["id"]: None}

    resources.run_unit_of_work(c.ORDER_SAGA, lambda uow: uow.republish([event]))
    rows = _outbox_rows(resources, [event["id"]])
    assert list(rows) == [event["id"]] and rows[event["id"]] is not None


@pytest.mark.parametrize(("errcode", "status"), [
    ("serialization_failure", 503),  # still failing after the local retries
    ("deadlock_detected", 503),
    ("query_canceled", 503),  # what statement_timeout raises
    ("check_violation", 500),
    ("unique_violation", 500),
])
def test_faults_answer_503_when_a_retry_may_cure_them_else_500(
        resources: Resources, errcode: str, status: int) -> None:
    """psycopg's own errors, as PostgreSQL raises them, through the step's mapping."""
    raise_it = f"DO $$ BEGIN RAISE EXCEPTION 'fault' USING ERRCODE = '{errcode}'; END $$"

    def work(uow: UnitOfWork) -> None:
        _emit(uow)
        uow.tx.conn.execute(raise_it)

    with pytest.raises(psycopg.Error) as raised:
        resources.run_unit_of_work(c.ORDER_SAGA, work)
    assert fault(raised.value, "step failed").status == status


def test_a_lost_connection_answers_503_once_and_the_pool_reconnects(
        resources: Resources) -> None:
    """PostgreSQL ends every pooled connection (as a restart does): the next unit of work
    answers 503, and the one after it runs on a new connection instead of finding the
    next dead one (the pool is drained)."""
    pooled = [resources.pool.getconn() for _ in range(2)]
    pids = [conn.info.backend_pid for conn in pooled]
    for conn in pooled:
        resources.pool.putconn(conn)
    with psycopg.connect(resources.settings.postgres_url(), autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    with pytest.raises(psycopg.OperationalError) as lost:
        resources.run_unit_of_work(c.ORDER_SAGA, _emit)
    assert fault(lost.value, "step failed").status == 503
    emitted = resources.run_unit_of_work(c.ORDER_SAGA, _emit)
    assert list(_outbox_rows(resources, [emitted])) == [emitted]


def test_the_readiness_probe_pings_postgresql_through_the_pool(resources: Resources) -> None:
    assert probes.ready_answer(resources) == (200, '{"status": "ok"}')
