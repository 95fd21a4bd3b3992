"""saga bench: start the stack, load it, check it, measure the PostgreSQL bound, report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tools.cli.cmd_up import add_broker_option
from tools.progress import add_quiet_option


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench", help="measure the whole local stack: throughput, latency, per-function "
        "time, CPU and RSS, the PostgreSQL bound; writes bench/results/<time>.json and .png")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--rate", type=float, help="orders per second (default: as fast as "
                        "--concurrency customers go)")
    parser.add_argument("--mix", default="happy=1", help="outcome mix (see saga load)")
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=60, help="orders before the measurement")
    parser.add_argument("--no-bound", action="store_true", help="skip the PostgreSQL bound")
    parser.add_argument("--bound-seconds", type=float, default=8.0,
                        help="pgbench time per client count")
    parser.add_argument("--attach", action="store_true",
                        help="use the stack running in SAGA_STATE_DIR instead of starting one")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="default: bench/results in the project")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_quiet_option(parser)
    add_broker_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools import REPO_ROOT
    from tools.bench.stack import report
    from tools.bench.stack.run import BenchSpec, run_bench
    from tools.loadgen.mix import MixError, parse_mix
    from tools.loadgen.target import resolve
    from tools.progress import Progress
    from tools.settings import get_local_settings

    try:
        parse_mix(args.mix)
        target = resolve(get_local_settings(), REPO_ROOT) if args.attach else None
    except MixError as exc:
        print(f"saga bench: {exc}")
        return 2
    if args.attach and args.broker:
        print("saga bench: --broker starts a stack of its own; with --attach the running "
              "stack's broker is used (drop one of them)")
        return 2
    spec = BenchSpec(orders=args.orders, rate=args.rate, mix=args.mix, broker=args.broker,
                     customers=args.customers, concurrency=args.concurrency,
                     warmup=args.warmup, bound=not args.no_bound,
                     bound_seconds=args.bound_seconds)
    result = run_bench(spec, attach=target,
                       progress=Progress.on_stderr("saga bench", quiet=args.quiet))
    report.write(result, args.results_dir or REPO_ROOT / "bench" / "results",
                 plot=not args.no_plot)
    print(json.dumps(report.printable(result), indent=1, default=str) if args.json
          else report.text(result))
    return 0 if result["violations"] == 0 and result["unsettled"] == 0 else 1
