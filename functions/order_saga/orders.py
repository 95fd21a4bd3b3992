"""The order saga's store: the orders it moves through the state machine
(common/order_state.py), as Orders; PgOrders on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol
from uuid import UUID

from common.events.models import CancelReason
from common.order_state import Order, Status, advance, read_order
from common.outbox import Outbox
from common.pg import Tx


class Orders(Protocol):
    def advance(self, order_id: UUID, *, expected: Status, path: Sequence[Status],
                actor: str, reason: CancelReason | None = None, event_id: str | None = None,
                payment_window: timedelta | None = None) -> Order | None:
        """Move the order through `path` if it is in `expected` now, emitting what each
        new status implies; None, and nothing written, when it is not (or is unknown)."""
        ...

    def read(self, order_id: UUID) -> Order | None:
        """The order as it is now, without a lock."""
        ...


class PgOrders:
    def __init__(self, tx: Tx, outbox: Outbox) -> None:
        self.tx = tx
        self.outbox = outbox

    def advance(self, order_id: UUID, *, expected: Status, path: Sequence[Status],
                actor: str, reason: CancelReason | None = None, event_id: str | None = None,
                payment_window: timedelta | None = None) -> Order | None:
        return advance(self.tx, self.outbox, order_id, expected=expected, path=path,
                       actor=actor, reason=reason, event_id=event_id,
                       payment_window=payment_window)

    def read(self, order_id: UUID) -> Order | None:
        return read_order(self.tx, order_id)
