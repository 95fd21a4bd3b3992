"""The bench's picture, readable at a glance: left, how long orders took (histogram with the
p50/p95/p99 marked); right, orders submitted and settled per second over the run, with the
PostgreSQL bound as a line. Headline figures in the title."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def plot_bench(result: dict[str, Any], path: Path) -> Path:
    latencies: list[float] = result.get("latencies_ms") or []
    series: dict[str, list[int]] = result.get("timeline") or {}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), dpi=100)
    fig.suptitle(
        f"saga bench — {result.get('orders')} orders, {result.get('orders_per_s')} orders/s "
        f"end to end, {_fraction(result)} of the PostgreSQL bound, "
        f"{result.get('violations')} violations", fontsize=12)

    if latencies:
        left.hist(latencies, bins=60, color="#4878a8")
        for key, colour in (("p50_ms", "#2ca02c"), ("p95_ms", "#ff7f0e"), ("p99_ms", "#d62728")):
            value = result.get(key)
            if value is not None:
                left.axvline(value, color=colour, linestyle="--",
                             label=f"{key[:-3]} {value:.0f} ms")
        left.legend()
    left.set_title("Latency: POST /orders to terminal status")
    left.set_xlabel("ms")
    left.set_ylabel("orders")

    seconds = range(len(series.get("submitted", [])))
    right.plot(seconds, series.get("submitted", []), label="submitted /s", color="#999999")
    right.plot(seconds, series.get("terminal", []), label="reached terminal /s",
               color="#4878a8", linewidth=2)
    bound = result.get("pg_bound_orders_per_s")
    if bound:
        right.axhline(bound, color="#d62728", linestyle=":",
                      label=f"PostgreSQL bound {bound:.0f}/s")
    right.set_title("Throughput over the run")
    right.set_xlabel("seconds since the first order")
    right.set_ylabel("orders per second")
    right.legend()
    right.grid(alpha=0.3)

    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path)
    plt.close(fig)
    return path


def _fraction(result: dict[str, Any]) -> str:
    value = result.get("bound_fraction")
    return "?" if value is None else f"{value:.0%}"
