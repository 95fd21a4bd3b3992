"""Order ids as a person types them (common/order_ids.py parses them): the whole UUID, or
any unique prefix of at least 6 hex digits (the 8 the tools print, `6fc43fbf`, or more).
`resolve_order_id(ctx, text)` is the one resolver every command taking an order id calls.
A full UUID is returned as is, without asking the database; a prefix is looked up in
orders.orders. Bad usage (too short, not hex) and an ambiguous prefix raise OpsError (exit
2); a prefix no order has raises NoSuchOrder (exit 1)."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, pool, select

from common import order_ids
from common import tables as t
from common.order_ids import prefix_range
from tools.ops.context import OpsContext, OpsError

SHOWN = 5  # matches listed for an ambiguous prefix


class NoSuchOrder(OpsError):
    """No order has this id or prefix (a command exits 1 for it, not 2)."""


def parse_order_id(text: str) -> uuid.UUID | str:
    """A full UUID, or the hex prefix to look up (common/order_ids.py); OpsError else."""
    try:
        return order_ids.parse_order_id(text)
    except ValueError as exc:
        raise OpsError(str(exc)) from None


def resolve_order_id(ctx: OpsContext, text: str) -> str:
    """The order id `text` names (a UUID string); see the module docstring."""
    parsed = parse_order_id(text)
    if isinstance(parsed, uuid.UUID):
        return str(parsed)
    low, high = prefix_range(parsed)
    engine = create_engine(ctx.require_database().sqlalchemy_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            found = [str(row.id) for row in conn.execute(
                select(t.orders.c.id).where(t.orders.c.id.between(low, high))
                .order_by(t.orders.c.id).limit(SHOWN + 1))]
    finally:
        engine.dispose()
    if not found:
        raise NoSuchOrder(f"no order id starts with {parsed}")
    if len(found) > 1:
        listed = ", ".join(found[:SHOWN]) + (", ..." if len(found) > SHOWN else "")
        raise OpsError(f"{parsed} is the start of several order ids ({listed}): give more "
                       "characters")
    return found[0]
