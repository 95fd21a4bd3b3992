"""/accounts: the customer's wallet: create it, deposit money, see balance and
ledger. Deposits lock the account row and write a ledger row with the balances after it, so
the ledger replays to the balance."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field

from common.pg import Tx
from common.problems import Problem
from functions.api import sql
from functions.api.route_specs import Call, Reply, RouteGroup
from functions.api.schemas import MoneyIn, MoneyOut, RequestModel
from functions.api.tx import transact

ROUTES = RouteGroup("accounts")

MAX_DEPOSIT = Decimal("1000000.00")
# numeric(12,2): what a balance can hold at all.
MAX_BALANCE = Decimal("9999999999.99")
LEDGER_ENTRIES = 20


class DepositIn(RequestModel):
    amount: Annotated[MoneyIn, Field(gt=0, le=MAX_DEPOSIT)] = Field(
        description="More than 0 and at most 1000000.00, e.g. \"12.50\"."
    )


class AccountOut(BaseModel):
    customer_id: str
    balance: MoneyOut = Field(description="Spendable money.")
    frozen: MoneyOut = Field(description="Money held for payments in flight.")


class LedgerEntry(BaseModel):
    id: int
    kind: str = Field(description="deposit, freeze, unfreeze, capture or refund.")
    amount: MoneyOut
    balance_after: MoneyOut
    frozen_after: MoneyOut
    order_id: UUID | None
    created_at: datetime


class AccountDetail(AccountOut):
    ledger: list[LedgerEntry] = Field(description=f"The latest {LEDGER_ENTRIES}, newest first.")


def _account(row: tuple[str, Decimal, Decimal]) -> AccountOut:
    customer_id, balance, frozen = row
    return AccountOut(customer_id=customer_id, balance=balance, frozen=frozen)


def _no_wallet() -> Problem:
    return Problem(404, "not found", "you have no wallet yet: create it with POST /accounts")


@ROUTES.route(
    "POST", "/accounts", summary="Create my wallet", auth="customer", status=201,
    response=AccountOut, errors=(409,),
    response_headers=(("Location", "/accounts/me"),),
)
def create_account(call: Call) -> Reply:
    customer = call.user.subject

    def work(tx: Tx) -> AccountOut | None:
        row = tx.one(sql.CREATE_ACCOUNT, {"customer_id": customer})
        return None if row is None else _account(row)

    account = transact(call, work)
    if account is None:
        raise Problem(409, "conflict", "you already have a wallet")
    return Reply(account, 201, {"Location": "/accounts/me"})


@ROUTES.route(
    "POST", "/accounts/deposit", summary="Deposit money into my wallet", auth="customer",
    body=DepositIn, response=AccountOut, errors=(404, 409, 422),
)
def deposit(call: Call) -> AccountOut:
    customer = call.user.subject
    amount = call.body(DepositIn).amount

    def work(tx: Tx) -> AccountOut:
        row = tx.one(sql.LOCK_BALANCE, {"customer_id": customer})
        if row is None:
            raise _no_wallet()
        if row[0] + amount > MAX_BALANCE:
            raise Problem(409, "conflict", "the balance would exceed what a wallet holds")
        after = tx.one(sql.DEPOSIT, {"customer_id": customer, "amount": amount})
        assert after is not None  # the row is locked
        return _account(after)

    return transact(call, work)


@ROUTES.route(
    "GET", "/accounts/me", summary="My balance and latest ledger entries", auth="customer",
    response=AccountDetail, errors=(404,),
)
def my_account(call: Call) -> AccountDetail:
    customer = call.user.subject

    def work(tx: Tx) -> AccountDetail:
        row = tx.one(sql.ACCOUNT, {"customer_id": customer})
        if row is None:
            raise _no_wallet()
        entries = tx.all(sql.LATEST_LEDGER, {"customer_id": customer, "limit": LEDGER_ENTRIES})
        return AccountDetail(
            **_account(row).model_dump(),
            ledger=[LedgerEntry(id=entry_id, kind=kind, amount=amount,
                                balance_after=balance_after, frozen_after=frozen_after,
                                order_id=order_id, created_at=created_at)
                    for (entry_id, kind, amount, balance_after, frozen_after, order_id,
                         created_at) in entries])

    return transact(call, work)
