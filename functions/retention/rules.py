"""What the retention sweep may delete, one rule per table (docs/operations.md, "Retention"):
inbox rows whose event can no longer be delivered again, published outbox rows of finished
orders, idempotency keys no client may still retry with, dead letters dealt with long ago.
Never a waiting dead letter, an unpublished outbox row, or the inbox row of an event a stored
dead letter could re-drive. On Tansu (every record kept for the broker's life) inbox rows go
only once older than the broker's start, except the events the runtime re-published then.
Each rule is SQL on its table's alias, walked oldest first through an index (migration 0003).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from common.dead_letters import waiting_sql
from common.events.catalogue import DLQ
from common.order_state import TERMINAL
from common.settings import Settings

# Every SQL text below is built from constants of this module and common's (statuses, the
# dead letters' waiting rule): values only ever travel as bound %(name)s parameters. The
# fragments' names are lower-case: no statement of their own (tests/integration/
# test_statements.py PREPAREs the rules' whole statements).
_terminal = ", ".join(f"'{status}'" for status in sorted(TERMINAL))
_unfinished_orders = ("SELECT CAST(u.id AS text) FROM orders.orders u"  # noqa: S608
                      f" WHERE u.status NOT IN ({_terminal})")
# Orders whose outbox the runtime re-published when it started the broker (unfinished then).
_unfinished_at_start = f"{_unfinished_orders} OR u.updated_at >= %(broker_started_at)s"
_as_uuid = ("CASE WHEN i.event_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
            "[0-9a-f]{12}$' THEN CAST(i.event_id AS uuid) END")
_republished_at_start = (
    f"SELECT 1 FROM messaging.outbox o WHERE o.id = {_as_uuid}"  # noqa: S608
    f" AND o.created_at < %(broker_started_at)s AND o.partition_key IN ({_unfinished_at_start})")


@dataclass(frozen=True)
class Rule:
    """Rows of `table` (as `alias`) that may go: `where`, with `params`; batches take the
    oldest first by `walk`, an indexed column."""

    name: str  # the count's key in the sweep's log line
    table: str
    alias: str
    walk: str
    where: str
    params: Mapping[str, object] = field(default_factory=dict)


def inbox_window_s(settings: Settings, consumer: str) -> int:
    """How long `consumer`'s inbox rows are kept: the dlq function reads the dead-letter topic
    (kept longer), every other consumer the event topics."""
    return settings.retention_dead_letter_inbox_s if consumer == DLQ else settings.retention_inbox_s


def dead_letters_window_s(settings: Settings) -> int:
    """At least the longest inbox window: a re-driven event is back in its topic, and its
    consumers' inbox rows are kept only while its letter is."""
    return max(settings.retention_dead_letters_s, settings.retention_inbox_s,
               settings.retention_dead_letter_inbox_s)


def retention_rules(settings: Settings) -> list[Rule]:
    """Every rule these settings allow. On Tansu with no known start, the inbox has none."""
    tansu = not settings.enforces_retention()
    started = settings.broker_started_at
    rules: list[Rule] = []
    if not tansu or started is not None:
        # The runtime gives the start on the database's clock (tools/runtime/recovery.py).
        rules += _inbox_rules(settings, started)
    rules.append(_outbox_rule(settings, started if tansu else None))
    rules.append(Rule(
        "idempotency_keys", "orders.idempotency_keys", "k", "created_at",
        "k.created_at < now() - %(window_s)s * interval '1 second'",
        {"window_s": settings.retention_idempotency_s}))
    rules.append(_dead_letters_rule(settings, started if tansu else None))
    return rules


def _inbox_rules(settings: Settings, before: datetime | None) -> list[Rule]:
    # A stored dead letter may be re-driven at any time: same id, to every consumer of its
    # topic, and they must still find their inbox rows.
    where = ("i.received_at < now() - %(window_s)s * interval '1 second' AND NOT EXISTS ("
             "SELECT 1 FROM messaging.dead_letters d WHERE d.event_id = i.event_id)")
    params: dict[str, object] = {"dlq": DLQ}
    if before is not None:
        # Tansu: the broker started empty, then got again the outbox of every order that was
        # unfinished (tools/runtime/recovery.py); those events are in it as long as it runs.
        where += (" AND i.received_at < %(broker_started_at)s"
                  f" AND NOT EXISTS ({_republished_at_start})")
        params["broker_started_at"] = before
    return [
        Rule("inbox", "messaging.inbox", "i", "received_at", f"i.consumer <> %(dlq)s AND {where}",
             params | {"window_s": settings.retention_inbox_s}),
        Rule("inbox", "messaging.inbox", "i", "received_at", f"i.consumer = %(dlq)s AND {where}",
             params | {"window_s": settings.retention_dead_letter_inbox_s}),
    ]


def _outbox_rule(settings: Settings, started: datetime | None) -> Rule:
    # An unfinished order keeps its events: `saga trace` of a stuck order shows them, and a
    # restart on Tansu publishes them again.
    where = ("o.published_at IS NOT NULL"
             " AND o.created_at < now() - %(window_s)s * interval '1 second'"
             f" AND o.partition_key NOT IN ({_unfinished_orders})")
    params: dict[str, object] = {"window_s": settings.retention_outbox_s}
    if started is not None:
        # The events re-published at this broker's start: the inbox rule above looks them up.
        where += (" AND NOT (o.created_at < %(broker_started_at)s"
                  f" AND o.partition_key IN ({_unfinished_at_start}))")
        params["broker_started_at"] = started
    return Rule("outbox", "messaging.outbox", "o", "created_at", where, params)


def _dead_letters_rule(settings: Settings, started: datetime | None) -> Rule:
    # A letter whose re-drive failed again stays while that newer letter waits: an operator
    # reads the chain (`saga dlq show`, failed_again_as).
    where = (f"NOT ({waiting_sql('d')})"  # noqa: S608
             " AND coalesce(d.redriven_at, d.created_at)"
             " < now() - %(window_s)s * interval '1 second'"
             f" AND NOT EXISTS (SELECT 1 FROM messaging.dead_letters w WHERE {waiting_sql('w')}"
             " AND split_part(w.attributes ->> 'sagaredrive', '.', 1) = CAST(d.id AS text))")
    params: dict[str, object] = {"window_s": dead_letters_window_s(settings)}
    if started is not None:
        # Tansu keeps what a re-drive produced for the broker's life.
        where += " AND coalesce(d.redriven_at, d.created_at) < %(broker_started_at)s"
        params["broker_started_at"] = started
    return Rule("dead_letters", "messaging.dead_letters", "d", "id", where, params)
