"""Where a bench's figures go: bench/results/<timestamp>.json (everything) and .png (the
picture), and the short form printed with --json or as text."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

HEADLINE = ("orders", "orders_per_s", "p50_ms", "p95_ms", "p99_ms", "pg_bound_orders_per_s",
            "bound_fraction", "violations", "peak_rss_mb")
BULKY = ("latencies_ms", "timeline")


def write(result: dict[str, Any], results_dir: Path, *, plot: bool = True) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%dT%H%M%S")
    path = results_dir / f"{stem}.json"
    path.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    result["results_file"] = str(path)
    if plot:
        try:
            from tools.bench.stack.plot import plot_bench

            result["plot_file"] = str(plot_bench(result, results_dir / f"{stem}.png"))
        except ImportError:  # matplotlib is a dev dependency; the JSON is the result
            print("saga bench: no PNG: matplotlib is not installed (./taskw installs it; "
                  "or pip install matplotlib)", file=sys.stderr)
            result["plot_file"] = None
    return path


def printable(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON printed by --json: every headline key first, bulky arrays left out."""
    head = {k: result.get(k) for k in HEADLINE}
    return head | {k: v for k, v in result.items() if k not in HEADLINE and k not in BULKY}


def _broker(broker: dict[str, Any]) -> str:
    kind = {"tansu": "Tansu", "kafka": "Apache Kafka"}.get(str(broker.get("kind")), "unknown")
    origin = "started by the stack" if broker.get("embedded") else "given"
    if broker.get("cpu_s") is None:
        return f"{kind} ({origin}; its CPU and RSS not measured)"
    return (f"{kind} ({origin}): CPU {broker['cpu_s']} s, peak RSS "
            f"{broker.get('peak_rss_mb')} MB")


def text(result: dict[str, Any]) -> str:
    r = result
    lines = [
        f"saga bench: {r['settled']}/{r['orders']} orders settled, "
        f"{r['orders_per_s']} orders/s end to end",
        f"  latency POST -> terminal: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, "
        f"p99 {r['p99_ms']} ms",
        f"  PostgreSQL bound: {r.get('pg_bound_orders_per_s')} orders/s "
        f"({r.get('pg_bound_clients')} clients, {r.get('pg_bound_conditions')}); "
        f"fraction {r.get('bound_fraction')}",
        f"  check: {'OK' if r['violations'] == 0 else str(r['violations']) + ' violation(s)'}; "
        f"events per order {r['events_per_order']}; largest function RSS "
        f"{r['peak_rss_mb']} MB (its own memory, USS: {r.get('largest_uss_mb')} MB)",
        "  per function (events/s, handling p50 ms):  " + ", ".join(
            f"{k} {v['events_per_s']}/s {v['handling_p50_ms']}"
            for k, v in r["functions"].items()),
        "  CPU s (window {window_s}): stack {stack_s}, loadgen {loadgen_s}, others {other_s} "
        "of {machine_capacity_s}".format(**r["cpu"]),
        f"  broker: {_broker(r.get('broker') or {})}",
        f"  results: {r.get('results_file')}  plot: {r.get('plot_file')}",
    ]
    return "\n".join(lines)
