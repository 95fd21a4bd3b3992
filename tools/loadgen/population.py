"""A run's own shop, set up through the public API and named after the run, so `saga check
--customer-prefix` checks exactly this run on a shared database: <RUN>-P0 .. P7 with plenty
of stock at 1.00-8.00 (several SKUs, so orders do not all queue on one stock row),
<RUN>-NONE with none (out_of_stock), <RUN>-DEAR dearer than any wallet
(insufficient_funds). Customers (a few dozen: argon2 is slow on purpose) register, sign
in, open a wallet and deposit enough for every order they will place."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

from tools.apiclient import ApiClient, ApiError

PLENTY_SKUS = 8
DEAR_PRICE = Decimal("5000000.00")  # above MAX_DEPOSIT: no wallet of ours can pay it
MAX_DEPOSIT = Decimal("1000000.00")
LINE_MAX_QUANTITY = 2  # happy orders buy 1-2 lines of 1-2 units


@dataclass(frozen=True)
class Customer:
    name: str
    client: ApiClient


@dataclass(frozen=True)
class Population:
    run_id: str
    plenty: list[str]
    none: str
    dear: str
    customers: list[Customer]

    @property
    def customer_prefix(self) -> str:
        return f"{self.run_id}-"

    @property
    def sku_prefix(self) -> str:
        return f"{self.run_id.upper()}-"


def new_run_id() -> str:
    return "load-" + secrets.token_hex(3)


def prepare(api: ApiClient, admin_token: str, *, run_id: str, customers: int, orders: int,
            workers: int = 8, on_customer: Callable[[], None] = lambda: None) -> Population:
    """Create the SKUs (stock for every order the run can place) and the customers;
    `on_customer` is called as each customer is ready (from the setup threads)."""
    admin = api.as_customer(admin_token)
    prefix = run_id.upper()
    # Each order takes at most 2 lines x 2 units of one plenty SKU each: 4 units per SKU.
    per_sku = min(1_000_000, orders * 2 * LINE_MAX_QUANTITY + 100)
    plenty = [f"{prefix}-P{i}" for i in range(PLENTY_SKUS)]
    for i, sku in enumerate(plenty):
        _product(admin, sku, Decimal(i + 1), per_sku)
    _product(admin, f"{prefix}-NONE", Decimal("3.00"), 0)
    _product(admin, f"{prefix}-DEAR", DEAR_PRICE, min(1_000_000, orders + 10))
    # The dearest happy order: 2 lines x 2 units x 8.00 = 32.00; twice that per order.
    per_customer = min(MAX_DEPOSIT, Decimal(64) * (orders // max(customers, 1) + 2))
    names = [f"{run_id}-c{i:04d}" for i in range(customers)]

    def ready(name: str) -> Customer:
        customer = _customer(api, name, per_customer)
        on_customer()
        return customer

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="setup") as pool:
        made = list(pool.map(ready, names))
    return Population(run_id, plenty, f"{prefix}-NONE", f"{prefix}-DEAR", made)


def _product(admin: ApiClient, sku: str, price: Decimal, stock: int) -> None:
    admin.request("POST", "/products", {
        "sku": sku, "name": f"load test {sku}", "price": str(price), "initial_stock": stock})


def _customer(api: ApiClient, name: str, deposit: Decimal) -> Customer:
    password = secrets.token_urlsafe(16)
    api.register(name, password)
    client = api.as_customer(api.login(name, password))
    try:
        client.create_account()
    except ApiError as exc:
        if exc.status != 409:
            raise
    client.deposit(deposit)
    return Customer(name, client)
