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

from common.outbox import Outbox
from common.pg import Tx
from functions.payments import sql

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
    def __init__(self, tx: Tx, _outbox: Outbox) -> None:
        self.tx = tx

    def lock_account(self, customer_id: str) -> Account | None:
        row = self.tx.one(sql.LOCK_ACCOUNT, {"customer_id": customer_id})
        return None if row is None else Account(*row)

    def lock_payment(self, order_id: UUID) -> Payment | None:
        row = self.tx.one(sql.LOCK_PAYMENT, {"order_id": order_id})
        return None if row is None else Payment(order_id, *row)

    def claim_payment(self, order_id: UUID, customer_id: str, amount: Decimal, status: str,
                      reason: str | None = None) -> bool:
        # Another transaction can get there first only without an account row to
        # serialise on.
        return self.tx.one(sql.CLAIM_PAYMENT, {
            "order_id": order_id, "customer_id": customer_id, "amount": amount,
            "status": status, "reason": reason}) is not None

    def set_payment_status(self, order_id: UUID, status: str) -> None:
        self.tx.run(sql.SET_PAYMENT_STATUS, {"order_id": order_id, "status": status})

    def post(self, account: Account, order_id: UUID,
             *movements: tuple[LedgerKind, Decimal]) -> Account:
        """The account's UPDATE and its ledger rows in one statement, however many
        movements."""
        after, ledger = moved(account, order_id, movements)
        if ledger:
            self.tx.run(sql.POST, {
                "customer_id": account.customer_id, "order_id": order_id,
                "balance": after.balance, "frozen": after.frozen,
                "kinds": [row["kind"] for row in ledger],
                "amounts": [row["amount"] for row in ledger],
                "balances_after": [row["balance_after"] for row in ledger],
                "frozen_after": [row["frozen_after"] for row in ledger]})
        return after if ledger else account
