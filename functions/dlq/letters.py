"""A dead letter's life, defined once (docs/operations.md, "saga dlq"): stored *waiting*;
then *re-driven* (sent again; if it fails again, that failure is a new letter, waiting) or
*resolved* (dealt with otherwise, never re-driven). `saga dlq list`, `saga status` and
`saga check` count waiting letters by `waiting()`, so they cannot disagree.

A re-drive carries the extension `sagaredrive` = "LETTER.N" (the Nth re-drive of dead
letter LETTER), part of the dlq function's inbox key: each failure of each re-drive is
stored once, and a redelivery of the same failure is not stored again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, FromClause

REDRIVE_EXTENSION = "sagaredrive"
_MARK = re.compile(r"^(\d+)\.(\d+)$")


def waiting(letters: FromClause | None = None) -> ColumnElement[bool]:
    """Waiting for an operator: neither re-driven nor resolved (of messaging.dead_letters
    unless `letters` names an alias). SQLAlchemy is imported here: the tools ask, the dlq
    function, which stores letters with plain SQL, never does."""
    from sqlalchemy import and_, not_

    from common import tables as t

    table = t.dead_letters if letters is None else letters
    return and_(table.c.redriven_at.is_(None), not_(table.c.resolved))


def state_of(*, redriven: bool, resolved: bool) -> str:
    """A stored letter's state: "waiting" exactly where `waiting()` holds."""
    if resolved:
        return "resolved"
    return "redriven" if redriven else "waiting"


def waiting_sql(alias: str) -> str:
    """`waiting()` as SQL text on `messaging.dead_letters <alias>`, for hand-written queries."""
    from common import tables as t

    return str(waiting(t.dead_letters.alias(alias)))  # no parameters: plain SQL


def redrive_mark(letter_id: int, number: int) -> str:
    """The `sagaredrive` value of re-drive `number` (1, 2, ...) of dead letter `letter_id`."""
    return f"{letter_id}.{number}"


def redrive_of(attributes: Mapping[str, str]) -> int | None:
    """The dead letter whose re-drive failed into this one; None for a first failure (or a
    letter of the earlier scheme, whose `sagaredrive` was a bare number)."""
    match = _MARK.match(str(attributes.get(REDRIVE_EXTENSION) or ""))
    return int(match.group(1)) if match else None


def dedupe_key(attributes: Mapping[str, str]) -> str:
    """The dlq function's inbox key: the event, where it failed (one event may fail at
    several consumers, each dead-lettering its own copy), and which re-drive it came from.
    Letters stored with a bare re-drive number keep their keys, which never look like
    "LETTER.N" ones."""
    key = f"{attributes.get('id', '')}|{attributes.get('knativeerrordest') or ''}"
    if attributes.get(REDRIVE_EXTENSION):
        key += f"|{attributes[REDRIVE_EXTENSION]}"
    return key
