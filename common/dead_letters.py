"""A dead letter's life and its re-drive, defined once (docs/operations.md, "saga dlq"):
stored *waiting*; then *re-driven* (sent again; if it fails again, that failure is a new
letter, waiting) or *resolved* (dealt with otherwise, never re-driven). `saga dlq`, `saga
status`, `saga check` and the console count waiting letters by `waiting()`.

A re-drive is the stored event as first produced (same id, attributes, data, key) without
Knative's error extensions, plus `sagaredrive` = "LETTER.N" (the Nth re-drive of LETTER),
part of the dlq function's inbox key: each failure of each re-drive is stored once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from cloudevents.http import CloudEvent

from common import messaging_sql as sql
from common.cloudevents_kafka import event_from_parts
from common.events.catalogue import CATALOGUE
from common.pg import Tx

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, FromClause

REDRIVE_EXTENSION = "sagaredrive"
# Knative's description of the failure: stripped from a re-drive, which a function could
# otherwise mistake for its own data.
ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")
_MARK = re.compile(r"^(\d+)\.(\d+)$")


class NotRedrivable(ValueError):
    """This letter cannot be re-driven as it is; the message says why and what can."""


class Letter(NamedTuple):
    """A stored letter as the operations on it read it (messaging_sql.LETTER_COLUMNS)."""

    id: int
    event_type: str
    subject: str | None
    attributes: dict[str, Any]
    data: bytes | None
    redriven_at: datetime | None
    redrive_count: int
    resolved: bool


# The SQLAlchemy expressions below are for the readers (the tools, the console's pages):
# SQLAlchemy is imported when they are called, so the dlq function, which stores letters
# with plain SQL, never imports it.

def waiting(letters: FromClause | None = None) -> ColumnElement[bool]:
    """Waiting for an operator: neither re-driven nor resolved (of messaging.dead_letters
    unless `letters` names an alias)."""
    from sqlalchemy import and_, not_

    from common import tables as t

    table = t.dead_letters if letters is None else letters
    return and_(table.c.redriven_at.is_(None), not_(table.c.resolved))


def order_key(letters: FromClause | None = None) -> ColumnElement[str]:
    """A letter's partition key (its order's id), spelled as the expression index
    ix_dead_letters_order has it: the key a literal, not a parameter, so that a prepared
    statement's generic plan still matches the index."""
    from sqlalchemy import Text, literal_column

    from common import tables as t

    table = t.dead_letters if letters is None else letters
    return table.c.attributes.op("->>", return_type=Text)(literal_column("'partitionkey'"))


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


def topic_of(event_type: str) -> str | None:
    """The topic a letter of this type goes back to; None for a type not in the catalogue."""
    spec = CATALOGUE.get(event_type)
    return None if spec is None else spec.topic


def redrive_attributes(letter: Any) -> dict[str, str]:
    """The attributes of the letter's next re-drive (a dead_letters row): as first produced,
    with the mark of this re-drive and without the error extensions."""
    attributes = {k: str(v) for k, v in (letter.attributes or {}).items()
                  if k not in ERROR_EXTENSIONS}
    attributes[REDRIVE_EXTENSION] = redrive_mark(letter.id, letter.redrive_count + 1)
    return attributes


def redrive_key(letter: Any) -> str:
    """The record key of a re-drive: the event's partition key (the order id)."""
    return str((letter.attributes or {}).get("partitionkey") or letter.subject or "")


def redrive_event(letter: Any) -> CloudEvent:
    """The letter's next re-drive as a CloudEvent, for an outbox (whose rows hold JSON
    data): refused for a type the catalogue does not route, or data that is not JSON."""
    if topic_of(letter.event_type) is None:
        raise NotRedrivable(f"dead letter {letter.id}: type {letter.event_type!r} is not in "
                            "the catalogue, so its topic is unknown (`saga dlq redrive "
                            f"{letter.id} --topic TOPIC` sends it to a topic you name)")
    try:
        data = None if letter.data is None else json.loads(bytes(letter.data))
    except ValueError:
        raise NotRedrivable(f"dead letter {letter.id}: its data is not JSON, which an outbox "
                            f"cannot hold (`saga dlq redrive {letter.id}` sends the bytes as "
                            "stored)") from None
    return event_from_parts(redrive_attributes(letter), data)


def mark_redriven(tx: Tx, ids: Sequence[int]) -> None:
    """Record one more re-drive of each letter, in the caller's transaction."""
    tx.run(sql.MARK_REDRIVEN, {"ids": list(ids)})


def failed_again_as(tx: Tx, dead_letter_id: int) -> list[int]:
    """The letters that re-drives of this one failed into."""
    return [row[0] for row in tx.all(sql.FAILED_AGAIN_AS, {"mark": f"{dead_letter_id}.%"})]


def why_not_waiting(tx: Tx, letter: Any) -> str | None:
    """Why a handled letter is not re-driven again (None while it waits): a resolved one was
    dealt with otherwise, a re-driven one's failure, if any, is a newer letter."""
    if letter.resolved:
        return f"dead letter {letter.id} is resolved (dealt with otherwise)"
    if letter.redriven_at is None:
        return None
    again = failed_again_as(tx, letter.id)
    where = (f"that re-drive failed again as dead letter {again[-1]}: re-drive that one"
             if again else "if it failed again, the newer letter is waiting")
    return (f"dead letter {letter.id} was re-driven already ({letter.redrive_count}x, last "
            f"at {letter.redriven_at.isoformat(timespec='seconds')}); {where}")
