"""Figures of a load: latency percentiles and end-to-end throughput, and the per-second
timeline the plot draws."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tools.loadgen.load import LoadResult, OrderRecord


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latencies_ms(records: Sequence[OrderRecord], *, exclude_timeouts: bool = True
                 ) -> list[float]:
    """POST to terminal status of every settled order. Payment timeouts are excluded by
    default: their latency is the payment window, a setting rather than a speed."""
    return [r.latency_ms for r in records if r.latency_ms is not None
            and not (exclude_timeouts and r.scenario == "timeout")]


def throughput(records: Sequence[OrderRecord]) -> float:
    """Orders reaching a terminal state per second, from the first POST to the last
    terminal status: what a customer-facing clock sees end to end."""
    settled = [r for r in records if r.terminal_at is not None]
    if not settled:
        return 0.0
    first = min(r.submitted_at for r in records if r.submitted_at)
    last = max(r.terminal_at for r in settled if r.terminal_at is not None)
    return len(settled) / max(last - first, 1e-6)


def submit_rate(result: LoadResult) -> float:
    accepted = sum(1 for r in result.records if r.order_id is not None)
    return accepted / max(result.submitted_until - result.started_at, 1e-6)


def timeline(records: Sequence[OrderRecord]) -> dict[str, list[int]]:
    """Per second since the first POST: orders submitted and orders reaching terminal."""
    started = [r.submitted_at for r in records if r.submitted_at]
    if not started:
        return {"submitted": [], "terminal": []}
    t0 = min(started)
    submitted = Counter(int(t - t0) for t in started)
    terminal = Counter(int(r.terminal_at - t0) for r in records if r.terminal_at is not None)
    length = max([*submitted, *terminal]) + 1
    return {"submitted": [submitted.get(s, 0) for s in range(length)],
            "terminal": [terminal.get(s, 0) for s in range(length)]}


def latency_figures(records: Sequence[OrderRecord]) -> dict[str, Any]:
    values = latencies_ms(records)
    return {
        "p50_ms": _round(percentile(values, 50)),
        "p95_ms": _round(percentile(values, 95)),
        "p99_ms": _round(percentile(values, 99)),
        "max_ms": _round(max(values) if values else None),
        "latency_samples": len(values),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
