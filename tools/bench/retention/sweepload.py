"""The sweep under load: windows chosen so that exactly `rows` rows are past retention (half
the inbox's oldest, half the outbox's), the chain's step latency measured alone, then again
while the retention sweep (functions/retention, in a process of its own as in its pod, at
full speed or resting `pause_ratio` times each batch's time) deletes them; the sweep's time,
rate and CPU."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import psutil
from sqlalchemy import Engine, text

from tools import REPO_ROOT
from tools.bench.event.chain import Meter, run_chain
from tools.bench.retention.measure import Timed, latency_summary

YEARS = 10 * 365 * 86400
_SWEEPER = """
import json, sys, time
from common.resources import Resources
from functions.retention.sweep import sweep
resources = Resources.from_environment()
started = time.monotonic()
counts = sweep(resources, budget_s=float("inf"), pause_ratio=float(sys.argv[1]))
seconds = time.monotonic() - started
resources.close()
print(json.dumps(counts | {"seconds": round(seconds, 2)}))
"""
CHUNK_ORDERS = 10  # orders per chain run while the sweep runs (its latencies are pooled)


def windows_for(engine: Engine, rows: int) -> dict[str, str]:
    """SAGA_RETENTION_* making the `rows // 2` oldest inbox and outbox rows past retention."""
    half = rows // 2
    with engine.connect() as conn:
        def age(sql: str) -> int:
            seconds: float = conn.execute(text(sql), {"k": half}).scalar_one()
            return int(seconds) + 1

        inbox = age("SELECT extract(epoch FROM now() - received_at) FROM messaging.inbox "
                    "ORDER BY received_at OFFSET :k LIMIT 1")
        outbox = age("SELECT extract(epoch FROM now() - created_at) FROM messaging.outbox "
                     "WHERE published_at IS NOT NULL ORDER BY created_at OFFSET :k LIMIT 1")
    return {"SAGA_RETENTION_INBOX_S": str(inbox), "SAGA_RETENTION_DEAD_LETTER_INBOX_S": str(YEARS),
            "SAGA_RETENTION_OUTBOX_S": str(outbox), "SAGA_RETENTION_IDEMPOTENCY_S": str(YEARS),
            "SAGA_RETENTION_DEAD_LETTERS_S": str(YEARS)}


def sweep_under_load(mode: Timed, engine: Engine, env: dict[str, str], *, rows: int,
                     pause_ratio: float, tokens: list[str], skus: list[str],
                     baseline_orders: int, postgres: Meter, broker: Meter) -> dict[str, Any]:
    def chain(orders: int) -> None:
        run_chain(mode, engine, tokens=tokens, skus=skus, orders=orders, postgres=postgres,
                  broker=broker)

    mode.reset()
    chain(baseline_orders)
    baseline = _latencies(mode)
    # The bench's data is in no broker: the time rule applies (not Tansu's broker-life rule).
    sweeper_env = env | windows_for(engine, rows) | {"SAGA_BROKER_ENFORCES_RETENTION": "true"}
    mode.reset()
    postgres_before = postgres()
    started = time.monotonic()
    sweeper = subprocess.Popen([sys.executable, "-c", _SWEEPER, str(pause_ratio)],
                               cwd=REPO_ROOT,
                               env=sweeper_env, stdout=subprocess.PIPE, text=True)
    process = psutil.Process(sweeper.pid)
    cpu = 0.0
    orders = 0
    while sweeper.poll() is None:
        times = process.cpu_times()
        cpu = times.user + times.system
        chain(CHUNK_ORDERS)
        orders += CHUNK_ORDERS
    out, _ = sweeper.communicate()
    seconds = time.monotonic() - started
    counts = json.loads(out.strip().splitlines()[-1])
    deleted = sum(counts[t] for t in ("inbox", "outbox", "idempotency_keys", "dead_letters"))
    return {
        "rows_past_retention": rows, "pause_ratio": pause_ratio, "deleted": deleted,
        "counts": counts,
        "sweep_seconds": counts["seconds"], "rows_per_s": round(deleted / counts["seconds"]),
        "sweeper_cpu_s": round(cpu, 2),
        "postgres_cpu_s_during": round(postgres() - postgres_before, 2),
        "wall_s": round(seconds, 1), "orders_during": orders,
        "latency_before": baseline, "latency_during": _latencies(mode),
    }


def _latencies(mode: Timed) -> dict[str, Any]:
    steps = [s for name, samples in mode.latencies.items() if name != "api" for s in samples]
    return {"step": latency_summary(steps), "post_orders": latency_summary(
        mode.latencies.get("api", []))}
