"""Order ids as a person types them: the whole UUID, or any unique prefix of at least
MIN_PREFIX hex digits (the 8 the tools print, `6fc43fbf`, or more; dashes optional).
`resolve_order_id(ctx, text)` is the one resolver every command taking an order id calls.
A full UUID is returned as is, without asking the database; a prefix is looked up in
orders.orders. Bad usage (too short, not hex) and an ambiguous prefix raise OpsError (exit
2); a prefix no order has raises NoSuchOrder (exit 1)."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, pool, select

from common import tables as t
from tools.ops.context import OpsContext, OpsError

MIN_PREFIX = 6
SHOWN = 5  # matches listed for an ambiguous prefix


class NoSuchOrder(OpsError):
    """No order has this id or prefix (a command exits 1 for it, not 2)."""


def parse_order_id(text: str) -> uuid.UUID | str:
    """A full UUID, or the lowercase hex prefix to look up; OpsError for anything else."""
    digits = text.strip().lower().replace("-", "")
    if not digits or any(c not in "0123456789abcdef" for c in digits) or len(digits) > 32:
        raise OpsError(f"{text!r} is not an order id: give the UUID POST /orders answered, "
                       f"or at least its first {MIN_PREFIX} characters")
    if len(digits) == 32:
        return uuid.UUID(digits)
    if len(digits) < MIN_PREFIX:
        raise OpsError(f"{text!r} is too short for an order id prefix: give at least "
                       f"{MIN_PREFIX} characters (the 8 the tools print are enough)")
    return digits


def prefix_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The first and last UUID starting with `prefix` (PostgreSQL orders uuids as their
    bytes, so `id BETWEEN low AND high` is the prefix, and uses the primary key)."""
    return uuid.UUID(prefix.ljust(32, "0")), uuid.UUID(prefix.ljust(32, "f"))


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
