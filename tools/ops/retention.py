"""`saga retention`: the retention sweep once, now (functions/retention: the code the
retention function runs every ten minutes), or with --dry-run what it would delete, on the
stack's database or DATABASE_URL. On the Tansu stack of `./taskw up` the broker's start
comes from its runtime-state.json, as the runtime gives it to the function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.resources import Resources
from common.settings import Settings
from functions.retention.sweep import TABLES, sweep
from tools.infra import mask_url
from tools.ops.context import OpsContext, runtime_broker_kind

NOT_SWEPT_ON_TANSU = ("the inbox is not swept: the broker is Tansu (it keeps every record while "
                      "it runs) and when it started is unknown")


def run_sweep(ctx: OpsContext, *, dry_run: bool, budget_s: float) -> tuple[dict[str, int],
                                                                           list[str]]:
    """The sweep's counts, and notes for the operator."""
    settings = ctx.require_database()
    runtime = ctx.runtime
    if runtime is not None and _same_database(settings, runtime):
        started, kind = runtime.get("broker_started_at"), runtime_broker_kind(runtime)
        settings = settings.model_copy(update={  # what the runtime tells its functions
            "kafka_broker_kind": kind, "broker_enforces_retention": kind != "tansu",
            "broker_started_at": datetime.fromisoformat(started) if started else None})
    resources = Resources(settings)
    try:
        counts = sweep(resources, dry_run=dry_run, budget_s=budget_s, count_timeout_s=600)
    finally:
        resources.close()
    notes = [] if counts["inbox_swept"] else [NOT_SWEPT_ON_TANSU]
    if counts["more"]:
        notes.append(f"stopped after {budget_s:g} s with more to delete: run it again")
    return counts, notes


def _same_database(settings: Settings, runtime: dict[str, Any]) -> bool:
    """The database is the running stack's (taken from its state, or named the same)."""
    assert settings.database_url is not None
    return mask_url(settings.database_url.get_secret_value()) == runtime.get("database_url")


def render(counts: dict[str, Any]) -> str:
    verb = "would delete" if counts["dry_run"] else "deleted"
    lines = [f"{table:<18}{counts[table]:>12,} row(s) {verb}" for table in TABLES]
    if not counts["dry_run"]:
        lines.append(f"in {counts['batches']} batch(es)")
    return "\n".join(lines)
