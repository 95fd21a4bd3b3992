"""Per-function handling time and events/s, from the ECS lines the functions already write
(one per handled event, with event.duration in ns): no extra instrumentation, and the same
figures a Kibana dashboard would show."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tools.loadgen.metrics import percentile

STEP_ACTIONS = ("saga.step.", "saga.compensation.", "http.request")


def function_stats(log_dir: Path, since: float, until: float) -> dict[str, dict[str, Any]]:
    """function -> events handled, events/s, handling time p50/p95/mean (ms), in the
    window [since, until] (unix times)."""
    out: dict[str, dict[str, Any]] = {}
    window = max(until - since, 1e-6)
    for path in sorted(log_dir.glob("*.ndjson")):
        durations = _durations(path, since, until)
        if not durations:
            continue
        out[path.stem] = {
            "events": len(durations),
            "events_per_s": round(len(durations) / window, 1),
            "handling_p50_ms": round(percentile(durations, 50) or 0.0, 2),
            "handling_p95_ms": round(percentile(durations, 95) or 0.0, 2),
            "handling_mean_ms": round(sum(durations) / len(durations), 2),
        }
    return out


def _durations(path: Path, since: float, until: float) -> list[float]:
    found = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if '"duration"' not in line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            event = doc.get("event") or {}
            action = str(event.get("action", ""))
            if not action.startswith(STEP_ACTIONS) or "duration" not in event:
                continue
            stamp = _unix(doc.get("@timestamp"))
            if stamp is not None and since <= stamp <= until:
                found.append(float(event["duration"]) / 1e6)
    return found


def _unix(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
