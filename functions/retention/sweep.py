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

from sqlalchemy import Connection, TextClause, text

from common.db import run_in_transaction
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
    engine = resources.engine
    batches = 0
    if dry:
        for rule in rules:
            counts[rule.name] += run_in_transaction(
                engine, partial(_count, rule=rule, timeout_s=count_timeout_s))
    else:
        deadline = time.monotonic() + budget_s
        active = [(rule, _delete_statement(rule)) for rule in rules]
        while active and time.monotonic() < deadline:
            for rule, statement in list(active):
                started = time.monotonic()
                deleted = run_in_transaction(
                    engine, partial(_delete, rule=rule, statement=statement, batch=batch))
                counts[rule.name] += deleted
                batches += 1
                if deleted < batch:
                    active.remove((rule, statement))
                elif pause_ratio > 0:  # a throttle, not a wait for anything
                    time.sleep((time.monotonic() - started) * pause_ratio)
    return counts | {"batches": batches, "more": int(not dry and bool(active)),
                     "dry_run": int(dry),
                     "inbox_swept": int(any(rule.name == "inbox" for rule in rules))}


def _delete_statement(rule: Rule) -> TextClause:
    # ctid = ANY(ARRAY(...)): a TID scan of exactly the rows the subquery locked.
    return text(
        f"DELETE FROM {rule.table} WHERE ctid = ANY(ARRAY("  # noqa: S608 (rules are constants)
        f"SELECT {rule.alias}.ctid FROM {rule.table} AS {rule.alias} WHERE {rule.where}"
        f" ORDER BY {rule.alias}.{rule.walk} LIMIT :batch"
        f" FOR UPDATE OF {rule.alias} SKIP LOCKED))")


def _delete(conn: Connection, rule: Rule, statement: TextClause, batch: int) -> int:
    return int(conn.execute(statement, {**rule.params, "batch": batch}).rowcount)


def _count(conn: Connection, rule: Rule, timeout_s: int) -> int:
    # A count reads a whole backlog: it may need more than a step's statement_timeout.
    conn.execute(text(f"SET LOCAL statement_timeout = '{int(timeout_s)}s'"))
    return int(conn.execute(
        text(f"SELECT count(*) FROM {rule.table} AS {rule.alias} WHERE {rule.where}"),  # noqa: S608
        dict(rule.params)).scalar_one())
