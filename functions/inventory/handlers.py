"""Which event the inventory handles with what, on which store."""

from __future__ import annotations

from common.events import catalogue as c
from common.step import Handler
from functions.inventory.commit import commit_stock
from functions.inventory.release import release_stock
from functions.inventory.reserve import reserve_stock
from functions.inventory.stock import PgStock

HANDLERS: dict[str, Handler] = {
    c.ORDER_CREATED: reserve_stock,
    c.ORDER_PAID: commit_stock,
    c.ORDER_CANCELLED: release_stock,
}

STORE = PgStock
