"""saga bench-event: CPU per delivered event, alone / served / in the stack."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tools.cli.cmd_up import add_broker_option


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench-event", help="CPU per delivered event for each function: the step alone "
        "(in-process), served alone (one POST at a time) and in the stack (a saga bench "
        "file); writes bench/results/event-<time>.json")
    parser.add_argument("--orders", type=int, default=None,
                        help="happy-path orders per column (default 300: 2,400 deliveries; "
                        "30 with --callgrind)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="orders before each column (default 30; 15 with --callgrind)")
    parser.add_argument("--callgrind", action="store_true",
                        help="alone and served: user-space instructions per event under "
                        "valgrind's callgrind (independent of the machine's load; slow) "
                        "instead of CPU time")
    parser.add_argument("--callgrind-dumps", type=Path, default=None, metavar="DIR",
                        help="with --callgrind: keep the alone column's dumps in DIR, one "
                        "per function (callgrind_annotate --inclusive=yes DIR/payments.*)")
    parser.add_argument("--from-bench", type=Path, default=None,
                        help="a saga bench results JSON for the 'in the stack' column")
    parser.add_argument("--bench-orders", type=int, default=0,
                        help="without --from-bench: run a saga bench of this many orders "
                        "(no PostgreSQL bound) for that column; 0 leaves it out")
    parser.add_argument("--only", choices=("alone", "served", "stack"), action="append",
                        help="measure only these columns (repeatable)")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="default: bench/results in the project")
    parser.add_argument("--json", action="store_true", help="print the JSON, not the table")
    add_broker_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools import REPO_ROOT
    from tools.bench.event import report
    from tools.bench.event.run import EventBenchSpec, run_event_bench
    from tools.settings import get_local_settings

    only = set(args.only or ("alone", "served", "stack"))
    orders = args.orders if args.orders is not None else 30 if args.callgrind else 300
    warmup = args.warmup if args.warmup is not None else 15 if args.callgrind else 30
    spec = EventBenchSpec(orders=orders, warmup=warmup, alone="alone" in only,
                          served="served" in only,
                          from_bench=args.from_bench if "stack" in only else None,
                          bench_orders=args.bench_orders if "stack" in only else 0,
                          broker=args.broker or get_local_settings().broker,
                          callgrind=args.callgrind, callgrind_dumps=args.callgrind_dumps)
    result = run_event_bench(spec)
    path = report.write(result, args.results_dir or REPO_ROOT / "bench" / "results")
    result["results_file"] = str(path)
    print(json.dumps(result, indent=1, default=str) if args.json else
          report.table(result) + f"\nresults: {path}")
    return 0
