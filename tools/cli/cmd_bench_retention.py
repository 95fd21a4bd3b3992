"""saga bench-retention: the step alone and POST /orders as the inbox, outbox and
idempotency tables grow, and the retention sweep under load (tools/bench/retention)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tools.cli.cmd_up import add_broker_option


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give row counts separated by commas, e.g. 0,1000000") from None
    if any(size < 0 for size in sizes) or list(sizes) != sorted(sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: row counts must be >= 0 and ascending")
    return sizes


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench-retention", help="the step alone and POST /orders with the inbox, outbox and "
        "idempotency tables at each size, and the retention sweep under load; writes "
        "bench/results/retention-<time>.json")
    parser.add_argument("--sizes", type=_sizes, default=(0, 1_000_000, 10_000_000),
                        help="rows per table, ascending (default 0,1000000,10000000)")
    parser.add_argument("--orders", type=int, default=200, help="orders per size (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="orders before each size")
    parser.add_argument("--callgrind-orders", type=int, default=10,
                        help="orders per size under callgrind, for instructions (0: none)")
    parser.add_argument("--sweep-rows", type=int, default=1_000_000,
                        help="rows the sweep deletes under load at the largest size (0: none)")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="default: bench/results in the project")
    parser.add_argument("--json", action="store_true", help="print the JSON, not the table")
    add_broker_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from tools import REPO_ROOT
    from tools.bench.retention import report
    from tools.bench.retention.run import RetentionBenchSpec, run_retention_bench
    from tools.settings import get_local_settings

    if args.sweep_rows > 2 * max(args.sizes):
        print(f"saga bench-retention: --sweep-rows {args.sweep_rows} is more than the inbox "
              f"and outbox hold at the largest size: raise --sizes or lower it",
              file=sys.stderr)
        return 2
    spec = RetentionBenchSpec(sizes=args.sizes, orders=args.orders, warmup=args.warmup,
                              callgrind_orders=args.callgrind_orders, sweep_rows=args.sweep_rows,
                              broker=args.broker or get_local_settings().broker)
    result = run_retention_bench(
        spec, progress=lambda line: print(f"bench-retention: {line}", file=sys.stderr,
                                          flush=True))
    path = report.write(result, args.results_dir or REPO_ROOT / "bench" / "results")
    result["results_file"] = str(path)
    print(json.dumps(result, indent=1, default=str) if args.json else
          report.table(result) + f"\nresults: {path}")
    return 0
