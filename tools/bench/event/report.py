"""The breakdown as JSON (bench/results/event-<time>.json) and as a table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from common.events import catalogue as c
from tools.bench.event.inprocess import STEP_FUNCTIONS

ROWS = (*STEP_FUNCTIONS, c.API)
COLUMNS = (("alone", "alone"), ("served", "served"), ("stack", "in the stack"))


def write(result: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"event-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    return path


def _cell(result: dict[str, Any], column: str, row: str) -> str:
    figures = ((result.get(column) or {}).get("functions") or {}).get(row)
    if not figures:
        return "-"
    return f"{figures['cpu_ms_per_event']:.2f}"


def table(result: dict[str, Any]) -> str:
    """CPU ms per event (the api: per POST /orders), one row per function."""
    head = f"{'CPU ms per event':<22}" + "".join(f"{title:>14}" for _, title in COLUMNS)
    lines = [head, "-" * len(head)]
    for row in ROWS:
        label = "api (POST /orders)" if row == c.API else row
        lines.append(f"{label:<22}" + "".join(f"{_cell(result, key, row):>14}"
                                               for key, _ in COLUMNS))
    for key, title in COLUMNS[:2]:
        part = result.get(key) or {}
        if part:
            lines.append(f"{title}: PostgreSQL {part['postgres_ms_per_order']} ms and broker "
                         f"{part['broker_ms_per_order']} ms per order ({part['orders']} orders)")
    for key, title in (("alone_instructions", "alone"), ("served_instructions", "served")):
        counted = result.get(key) or {}
        if counted:
            lines.append(f"M instructions per event, {title} (callgrind): " + ", ".join(
                f"{row} {counted[row]['m_instructions_per_event']:.3f}"
                for row in ROWS if row in counted))
    stack = result.get("stack") or {}
    if stack:
        lines.append(
            f"in the stack ({stack['source']}, {stack['orders']} orders at "
            f"{stack['orders_per_s']}/s): KafkaSource emulation "
            f"{stack['kafka_source_ms_per_delivery']} ms and broker "
            f"{stack['broker_ms_per_delivery']} ms per delivery; PostgreSQL "
            f"{stack['postgres_ms_per_order']} ms, stack {stack['stack_ms_per_order']} ms "
            "per order")
    return "\n".join(lines)
