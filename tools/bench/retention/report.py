"""The retention bench as JSON (bench/results/retention-<time>.json) and as tables: per
table size, each function's CPU, PostgreSQL CPU, round trips, wall time and instructions per
event; the sweep's time and the step latency before and while it deletes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from common.events import catalogue as c
from tools.bench.event.inprocess import STEP_FUNCTIONS

ROWS = (*STEP_FUNCTIONS, c.API)


def write(result: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"retention-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    return path


def table(result: dict[str, Any]) -> str:
    head = (f"{'rows per table':>14} {'function':<20}{'CPU ms':>8}{'PG ms':>8}{'trips':>7}"
            f"{'p50 ms':>8}{'p99 ms':>8}{'M instr':>9}")
    lines = [head, "-" * len(head)]
    for at in result["sizes"]:
        for row in ROWS:
            f = at["alone"]["functions"].get(row)
            if f is None:
                continue
            instructions = (at.get("instructions") or {}).get(row, {})
            label = "api POST /orders" if row == c.API else row
            lines.append(
                f"{at['rows']:>14,} {label:<20}{f['cpu_ms_per_event']:>8.2f}"
                f"{f['postgres_ms_per_event']:>8.2f}{f['round_trips_per_event']:>7.1f}"
                f"{f['wall_ms_p50'] or 0:>8.2f}{f['wall_ms_p99'] or 0:>8.2f}"
                f"{instructions.get('m_instructions_per_event', float('nan')):>9.2f}")
    for table, cost in (result.get("index_cost") or {}).items():
        lines.append(f"{cost['index']}: {table}'s write {cost['us_per_row_without']} -> "
                     f"{cost['us_per_row_with']} us per row (+{cost['us_added']})")
    for sweep in result.get("sweeps") or []:
        before, during = sweep["latency_before"], sweep["latency_during"]
        lines += [
            f"sweep (pause ratio {sweep['pause_ratio']:g}): {sweep['deleted']:,} rows in "
            f"{sweep['sweep_seconds']} s "
            f"({sweep['rows_per_s']:,} rows/s, {sweep['counts']['batches']} batches; sweeper "
            f"CPU {sweep['sweeper_cpu_s']} s, PostgreSQL {sweep['postgres_cpu_s_during']} s)",
            f"step latency p50/p99 ms: before {before['step'].get('p50_ms')}/"
            f"{before['step'].get('p99_ms')}, during {during['step'].get('p50_ms')}/"
            f"{during['step'].get('p99_ms')} ({during['step'].get('events', 0)} deliveries)",
            f"POST /orders p50/p99 ms: before {before['post_orders'].get('p50_ms')}/"
            f"{before['post_orders'].get('p99_ms')}, during "
            f"{during['post_orders'].get('p50_ms')}/{during['post_orders'].get('p99_ms')}"]
    return "\n".join(lines)
