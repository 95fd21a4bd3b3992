"""Transactions for the API's handlers: `transact` for reads and writes that emit nothing,
`transact_with_events` for those that do, through the unit of work every writer shares
(common/unit_of_work.py: outbox rows in the transaction, published after commit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from common.events.catalogue import API
from common.outbox import Outbox
from common.pg import Tx
from functions.api.route_specs import Call

T = TypeVar("T")


def transact(call: Call, work: Callable[[Tx], T]) -> T:
    return call.resources.transaction(work)


def transact_with_events(call: Call, work: Callable[[Tx, Outbox], T]) -> T:
    """Run `work` with an outbox whose events continue the request's trace."""
    return call.resources.run_unit_of_work(
        API, lambda uow: work(uow.tx, uow.outbox(call.trace)))
