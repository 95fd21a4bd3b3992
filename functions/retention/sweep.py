"""The retention sweep: delete what functions/retention/rules.py allows, `batch` rows at a
time, oldest first, each batch a short transaction that locks its rows SKIP LOCKED: no lock
outlives a batch, two sweeps at once split the work and count each row once, a kill loses
only the batch in flight. The rules take turns, a batch each, until all are done or
`budget_s` is spent (the next ping carries on), resting `pause_ratio` times each batch's
time after it, so a backlog leaves the database to the steps. A dry run only counts.
"""

from __future__ import annotations

import time
from functools import partial

from common.pg import Tx
from common.resources import Resources
from functions.retention.rules import Rule, retention_rules

BATCH = 1000
RUN_BUDGET_S = 60.0  # well inside the Service's timeoutSeconds (knative/retention.yaml)
COUNT_TIMEOUT_S = 20  # per rule in a dry run: the five still end inside timeoutSeconds
# At full speed a sweep of a 1 M-row backlog more than doubled the steps' p50 latency while
# it ran; resting as long as each batch took kept it within 7%, at 26,000 rows/s
# (docs/benchmarks.md, "Tables that grow").
PAUSE_RATIO = 1.0
TABLES = ("inbox", "outbox", "idempotency_keys", "dead_letters")
# For this transaction only (SET LOCAL, as a statement that can be prepared).
_STATEMENT_TIMEOUT = "SELECT set_config('statement_timeout', %(timeout)s, true)"


def sweep(resources: Resources, *, batch: int = BATCH, budget_s: float = RUN_BUDGET_S,
          dry_run: bool | None = None, count_timeout_s: int = COUNT_TIMEOUT_S,
          pause_ratio: float = PAUSE_RATIO) -> dict[str, int]:
    """Rows deleted (or, dry, deletable) per table, and how the run went: `batches`,
    `more` (1: the budget ran out first), `dry_run`, `inbox_swept` (0 on Tansu with no
    known start)."""
    settings = resources.settings
    dry = settings.retention_dry_run if dry_run is None else dry_run
    rules = retention_rules(settings)
    counts = dict.fromkeys(TABLES, 0)
    batches = 0
    if dry:
        for rule in rules:
            counts[rule.name] += resources.transaction(
                partial(_count, rule=rule, timeout_s=count_timeout_s))
    else:
        deadline = time.monotonic() + budget_s
        active = [(rule, delete_statement(rule)) for rule in rules]
        while active and time.monotonic() < deadline:
            for rule, statement in list(active):
                started = time.monotonic()
                deleted = resources.transaction(
                    partial(_delete, rule=rule, statement=statement, batch=batch))
                counts[rule.name] += deleted
                batches += 1
                if deleted < batch:
                    active.remove((rule, statement))
                elif pause_ratio > 0:  # a throttle, not a wait for anything
                    time.sleep((time.monotonic() - started) * pause_ratio)
    return counts | {"batches": batches, "more": int(not dry and bool(active)),
                     "dry_run": int(dry),
                     "inbox_swept": int(any(rule.name == "inbox" for rule in rules))}


def delete_statement(rule: Rule) -> str:
    """The rule's batch: its oldest `batch` rows, locked SKIP LOCKED, deleted."""
    # ctid = ANY(ARRAY(...)): a TID scan of exactly the rows the subquery locked.
    return (
        f"DELETE FROM {rule.table} WHERE ctid = ANY(ARRAY("  # noqa: S608 (rules are constants)
        f"SELECT {rule.alias}.ctid FROM {rule.table} AS {rule.alias} WHERE {rule.where}"
        f" ORDER BY {rule.alias}.{rule.walk} LIMIT %(batch)s"
        f" FOR UPDATE OF {rule.alias} SKIP LOCKED))")


def count_statement(rule: Rule) -> str:
    return f"SELECT count(*) FROM {rule.table} AS {rule.alias} WHERE {rule.where}"  # noqa: S608


def _delete(tx: Tx, rule: Rule, statement: str, batch: int) -> int:
    return tx.run(statement, {**rule.params, "batch": batch})


def _count(tx: Tx, rule: Rule, timeout_s: int) -> int:
    # A count reads a whole backlog: it may need more than a step's statement_timeout.
    tx.one(_STATEMENT_TIMEOUT, {"timeout": f"{int(timeout_s)}s"})
    row = tx.one(count_statement(rule), dict(rule.params))
    assert row is not None  # count(*)
    return int(row[0])
