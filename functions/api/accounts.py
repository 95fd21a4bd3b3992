"""/accounts: the customer's wallet: create it, deposit money, see balance and
ledger. Deposits lock the account row and write a ledger row with the balances after it, so
the ledger replays to the balance."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from common import tables as t
from common.problems import Problem
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


def _no_wallet() -> Problem:
    return Problem(404, "not found", "you have no wallet yet: create it with POST /accounts")


@ROUTES.route(
    "POST", "/accounts", summary="Create my wallet", auth="customer", status=201,
    response=AccountOut, errors=(409,),
    response_headers=(("Location", "/accounts/me"),),
)
def create_account(call: Call) -> Reply:
    customer = call.user.subject

    def work(conn: Connection) -> AccountOut | None:
        row = conn.execute(
            pg_insert(t.accounts).values(customer_id=customer).on_conflict_do_nothing()
            .returning(t.accounts.c.customer_id, t.accounts.c.balance, t.accounts.c.frozen)
        ).first()
        return None if row is None else AccountOut.model_validate(row._asdict())

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
    a = t.accounts

    def work(conn: Connection) -> AccountOut:
        row = conn.execute(
            select(a.c.balance).where(a.c.customer_id == customer).with_for_update()
        ).first()
        if row is None:
            raise _no_wallet()
        if row.balance + amount > MAX_BALANCE:
            raise Problem(409, "conflict", "the balance would exceed what a wallet holds")
        after = conn.execute(
            update(a).where(a.c.customer_id == customer)
            .values(balance=a.c.balance + amount, version=a.c.version + 1,
                    updated_at=func.now())
            .returning(a.c.customer_id, a.c.balance, a.c.frozen)
        ).one()
        conn.execute(insert(t.ledger).values(
            customer_id=customer, kind="deposit", amount=amount,
            balance_after=after.balance, frozen_after=after.frozen,
        ))
        return AccountOut.model_validate(after._asdict())

    return transact(call, work)


@ROUTES.route(
    "GET", "/accounts/me", summary="My balance and latest ledger entries", auth="customer",
    response=AccountDetail, errors=(404,),
)
def my_account(call: Call) -> AccountDetail:
    customer = call.user.subject
    a, ledger = t.accounts, t.ledger

    def work(conn: Connection) -> AccountDetail:
        row = conn.execute(
            select(a.c.customer_id, a.c.balance, a.c.frozen).where(a.c.customer_id == customer)
        ).first()
        if row is None:
            raise _no_wallet()
        entries = conn.execute(
            select(ledger.c.id, ledger.c.kind, ledger.c.amount, ledger.c.balance_after,
                   ledger.c.frozen_after, ledger.c.order_id, ledger.c.created_at)
            .where(ledger.c.customer_id == customer)
            .order_by(ledger.c.id.desc())
            .limit(LEDGER_ENTRIES)
        ).all()
        return AccountDetail(
            **row._asdict(), ledger=[LedgerEntry.model_validate(e._asdict()) for e in entries]
        )

    return transact(call, work)
