"""Transactions for the API's handlers: `transact` for reads and writes that emit nothing,
`transact_with_events` for those that do, through the unit of work every writer shares
(common/unit_of_work.py: outbox rows in the transaction, published after commit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection

from common.db import run_in_transaction
from common.events.catalogue import API
from common.outbox import Outbox
from functions.api.route_specs import Call

T = TypeVar("T")


def transact(call: Call, work: Callable[[Connection], T]) -> T:
    return run_in_transaction(call.resources.engine, work)


def transact_with_events(call: Call, work: Callable[[Connection, Outbox], T]) -> T:
    """Run `work` with an outbox whose events continue the request's trace."""
    return call.resources.run_unit_of_work(
        API, lambda uow: work(uow.conn, uow.outbox(call.trace)))
