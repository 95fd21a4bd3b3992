"""Order ids as a person types them: the whole UUID, or a unique prefix of at least
MIN_PREFIX hex digits (the 8 the tools print, dashes optional). One parser for `saga`'s
commands (tools/ops/orders.py) and the console's find."""

from __future__ import annotations

import uuid

MIN_PREFIX = 6


def parse_order_id(text: str) -> uuid.UUID | str:
    """A full UUID, or the lowercase hex prefix to look up; ValueError (a message naming
    what to give) for anything else."""
    digits = text.strip().lower().replace("-", "")
    if not digits or any(c not in "0123456789abcdef" for c in digits) or len(digits) > 32:
        raise ValueError(f"{text!r} is not an order id: give the UUID POST /orders answered, "
                         f"or at least its first {MIN_PREFIX} characters")
    if len(digits) == 32:
        return uuid.UUID(digits)
    if len(digits) < MIN_PREFIX:
        raise ValueError(f"{text!r} is too short for an order id prefix: give at least "
                         f"{MIN_PREFIX} characters (the 8 the tools print are enough)")
    return digits


def prefix_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The first and last UUID starting with `prefix` (PostgreSQL orders uuids as their
    bytes, so `id BETWEEN low AND high` is the prefix, and uses the primary key)."""
    return uuid.UUID(prefix.ljust(32, "0")), uuid.UUID(prefix.ljust(32, "f"))
