"""Transactions for the API's handlers. Events go through the transactional outbox:
written in the transaction with the change that caused them, published after commit
(Publisher never fails the request; what the broker did not acknowledge, the relay sends)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cloudevents.http import CloudEvent
from sqlalchemy import Connection

from common.db import get_engine, run_in_transaction
from common.events.catalogue import API
from common.outbox import Outbox, Publisher
from functions.api.routing import Call

T = TypeVar("T")


def transact(call: Call, work: Callable[[Connection], T]) -> T:
    return run_in_transaction(get_engine(call.settings), work)


def transact_with_events(call: Call, work: Callable[[Connection, Outbox], T]) -> T:
    """Run `work` in one transaction with an outbox that continues the request's trace,
    then publish what it emitted. A fresh Outbox per attempt: run_in_transaction re-runs
    `work` after a serialization failure, and a retry must not carry the events of the
    attempt that was rolled back."""
    engine = get_engine(call.settings)
    emitted: list[CloudEvent] = []

    def attempt(conn: Connection) -> T:
        outbox = Outbox(API, call.trace)
        result = work(conn, outbox)
        outbox.write(conn)
        emitted[:] = outbox.events
        return result

    result = run_in_transaction(engine, attempt)
    if emitted:
        Publisher(call.settings).publish(engine, emitted)
    return result
