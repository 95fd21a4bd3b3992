"""The inventory's store (Stock; PgStock on PostgreSQL). Lock order, everywhere in the
inventory: the order's reservations row first, then its stock rows in SKU order, so no two
steps can deadlock each other."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from common.outbox import Outbox
from common.pg import Tx
from functions.inventory import sql


class Stock(Protocol):
    """What the inventory's handlers read and write, in their transaction."""

    def claim_reservation(self, order_id: UUID, status: str) -> bool:
        """Insert the order's reservation in `status`; False when it exists already."""
        ...

    def available(self, skus: list[str]) -> dict[str, int]:
        """on_hand - reserved of each SKU that exists, its stock rows locked in SKU order."""
        ...

    def record_items(self, order_id: UUID, items: dict[str, int]) -> None: ...

    def lock_reservation(self, order_id: UUID) -> str | None:
        """The status of the order's reservation, row-locked; None when there is none yet."""
        ...

    def move_reservation(self, order_id: UUID, expected: str, status: str) -> bool:
        """Set the reservation to `status` if it is `expected` now (row-locking it); False,
        and nothing changed, when it is not."""
        ...

    def set_reservation_status(self, order_id: UUID, status: str) -> None: ...

    def reserved_items(self, order_id: UUID) -> dict[str, int]:
        """SKU -> quantity the order holds, with its stock rows locked in SKU order."""
        ...

    def move_stock(self, order_id: UUID, items: dict[str, int], *, kind: str,
                   on_hand_sign: int, reserved_sign: int) -> None:
        """Apply `sign * quantity` to on_hand and reserved of each SKU and record one stock
        movement per SKU, so sum(delta_on_hand) = on_hand and sum(delta_reserved) =
        reserved."""
        ...


class PgStock:
    def __init__(self, tx: Tx, _outbox: Outbox) -> None:
        self.tx = tx

    def claim_reservation(self, order_id: UUID, status: str) -> bool:
        return self.tx.one(sql.CLAIM_RESERVATION,
                           {"order_id": order_id, "status": status}) is not None

    def available(self, skus: list[str]) -> dict[str, int]:
        return dict(self.tx.all(sql.LOCK_STOCK, {"skus": sorted(skus)}))

    def record_items(self, order_id: UUID, items: dict[str, int]) -> None:
        self.tx.run(sql.RECORD_ITEMS, {"order_id": order_id, "skus": list(items),
                                       "quantities": list(items.values())})

    def lock_reservation(self, order_id: UUID) -> str | None:
        row = self.tx.one(sql.LOCK_RESERVATION, {"order_id": order_id})
        return None if row is None else str(row[0])

    def move_reservation(self, order_id: UUID, expected: str, status: str) -> bool:
        return self.tx.one(sql.MOVE_RESERVATION, {
            "order_id": order_id, "expected": expected, "status": status}) is not None

    def set_reservation_status(self, order_id: UUID, status: str) -> None:
        self.tx.run(sql.SET_RESERVATION, {"order_id": order_id, "status": status})

    def reserved_items(self, order_id: UUID) -> dict[str, int]:
        return dict(self.tx.all(sql.LOCK_ITEMS, {"order_id": order_id}))

    def move_stock(self, order_id: UUID, items: dict[str, int], *, kind: str,
                   on_hand_sign: int, reserved_sign: int) -> None:
        if not items:
            return
        ordered = sorted(items.items())
        self.tx.run(sql.MOVE_STOCK, {
            "order_id": order_id, "kind": kind, "skus": [sku for sku, _ in ordered],
            "on_hand_deltas": [on_hand_sign * qty for _, qty in ordered],
            "reserved_deltas": [reserved_sign * qty for _, qty in ordered]})
