"""The wallet and the ledger: the payments' store (Wallet; PgWallet on PostgreSQL).

Row locks, not optimistic version checks: concurrent payments from one wallet queue up on
its row and each sees the balance the previous one left, so it never goes negative and no
retry storm happens (`version` is still bumped, for writers that use it: the API's deposit).
Lock order: the account row first, then the order's payments row, in both handlers, so a
payment and a cancellation of the same order serialise instead of deadlocking.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol
from uuid import UUID

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from common import tables as t
from common.outbox import Outbox

LedgerKind = Literal["freeze", "capture", "unfreeze", "refund"]

# (balance sign, frozen sign) of each movement: deposits - captures + refunds always equals
# balance + frozen, which is how conservation is checked.
_EFFECT: dict[LedgerKind, tuple[int, int]] = {
    "freeze": (-1, 1),
    "capture": (0, -1),
    "unfreeze": (1, -1),
    "refund": (1, 0),
}


@dataclass(frozen=True)
class Account:
    customer_id: str
    balance: Decimal
    frozen: Decimal


@dataclass(frozen=True)
class Payment:
    order_id: UUID
    customer_id: str
    amount: Decimal
    status: str


_MOVE = (
    update(t.accounts).where(t.accounts.c.customer_id == bindparam("b_customer_id"))
    .values(balance=bindparam("b_balance"), frozen=bindparam("b_frozen"),
            version=t.accounts.c.version + 1, updated_at=func.now())
)


class Wallet(Protocol):
    """What the payments' handlers read and write, in their transaction."""

    def lock_account(self, customer_id: str) -> Account | None: ...

    def lock_payment(self, order_id: UUID) -> Payment | None: ...

    def claim_payment(self, order_id: UUID, customer_id: str, amount: Decimal, status: str,
                      reason: str | None = None) -> bool:
        """Insert the order's one payments row; False when it exists already (the primary
        key is what makes payment at most once per order)."""
        ...

    def set_payment_status(self, order_id: UUID, status: str) -> None: ...

    def post(self, account: Account, order_id: UUID,
             *movements: tuple[LedgerKind, Decimal]) -> Account:
        """Apply `movements` in order to a locked account, one ledger row each."""
        ...


def moved(account: Account, order_id: UUID, movements: tuple[tuple[LedgerKind, Decimal], ...]
          ) -> tuple[Account, list[dict[str, object]]]:
    """The account after `movements`, and their ledger rows with the balances after each.
    A zero amount (a free order) moves nothing and writes no row."""
    ledger: list[dict[str, object]] = []
    after = account
    for kind, amount in movements:
        if amount == 0:
            continue
        balance_sign, frozen_sign = _EFFECT[kind]
        after = Account(after.customer_id, after.balance + balance_sign * amount,
                        after.frozen + frozen_sign * amount)
        ledger.append({"customer_id": account.customer_id, "order_id": order_id, "kind": kind,
                       "amount": amount, "balance_after": after.balance,
                       "frozen_after": after.frozen})
    return after, ledger


class PgWallet:
    def __init__(self, conn: Connection, _outbox: Outbox) -> None:
        self.conn = conn

    def lock_account(self, customer_id: str) -> Account | None:
        row = self.conn.execute(
            select(t.accounts.c.customer_id, t.accounts.c.balance, t.accounts.c.frozen)
            .where(t.accounts.c.customer_id == customer_id)
            .with_for_update()
        ).first()
        return None if row is None else Account(row.customer_id, row.balance, row.frozen)

    def lock_payment(self, order_id: UUID) -> Payment | None:
        row = self.conn.execute(
            select(t.payments.c.customer_id, t.payments.c.amount, t.payments.c.status)
            .where(t.payments.c.order_id == order_id)
            .with_for_update()
        ).first()
        return None if row is None else Payment(order_id, row.customer_id, row.amount,
                                                row.status)

    def claim_payment(self, order_id: UUID, customer_id: str, amount: Decimal, status: str,
                      reason: str | None = None) -> bool:
        # Another transaction can get there first only without an account row to
        # serialise on.
        inserted = self.conn.execute(
            pg_insert(t.payments)
            .values(order_id=order_id, customer_id=customer_id, amount=amount, status=status,
                    reason=reason)
            .on_conflict_do_nothing()
            .returning(t.payments.c.order_id)
        ).first()
        return inserted is not None

    def set_payment_status(self, order_id: UUID, status: str) -> None:
        self.conn.execute(
            update(t.payments).where(t.payments.c.order_id == order_id)
            .values(status=status, updated_at=func.now())
        )

    def post(self, account: Account, order_id: UUID,
             *movements: tuple[LedgerKind, Decimal]) -> Account:
        """One UPDATE of the account and one INSERT of the rows, however many movements."""
        after, ledger = moved(account, order_id, movements)
        if not ledger:
            return account
        self.conn.execute(_MOVE, {"b_customer_id": account.customer_id,
                                  "b_balance": after.balance, "b_frozen": after.frozen})
        self.conn.execute(insert(t.ledger), ledger)
        return after
