"""saga chaos: a load under SIGKILLs, a PostgreSQL restart and a broker cut; then the
invariants. Exit 1 if anything was lost, doubled or left inconsistent."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tools.cli.cmd_up import add_broker_option
from tools.progress import add_quiet_option


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "chaos", help="load the stack while killing functions (SIGKILL every 2 s), restarting "
        "PostgreSQL and cutting the broker; then saga check")
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--rate", type=float, help="orders per second (default: as fast as "
                        "--concurrency customers go)")
    parser.add_argument("--mix", default="full", help="outcome mix (default: the full mix)")
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kill-every", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--pg-restart-at", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("--broker-cut-at", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--broker-cut", type=float, default=5.0, metavar="SECONDS")
    parser.add_argument("--payment-window", type=int, default=20, metavar="SECONDS")
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole thing")
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    add_quiet_option(parser)
    add_broker_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from tools import REPO_ROOT
    from tools.loadgen.chaos import ChaosSpec, run_chaos
    from tools.loadgen.mix import FULL_MIX, MixError, parse_mix
    from tools.progress import Progress
    from tools.settings import get_local_settings

    mix = FULL_MIX if args.mix == "full" else args.mix
    try:
        parse_mix(mix)
    except MixError as exc:
        print(f"saga chaos: {exc}")
        return 2
    spec = ChaosSpec(orders=args.orders, rate=args.rate, mix=mix, customers=args.customers,
                     concurrency=args.concurrency, kill_every_s=args.kill_every,
                     pg_restart_at_s=args.pg_restart_at, broker_cut_at_s=args.broker_cut_at,
                     broker_cut_s=args.broker_cut, payment_window_s=args.payment_window,
                     broker=args.broker or get_local_settings().broker)
    results_dir = args.results_dir or REPO_ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress.on_stderr("saga chaos", quiet=args.quiet)
    failed = 0
    for n in range(1, args.runs + 1):
        result = run_chaos(spec, progress=progress,
                           phase=f"run {n}/{args.runs}" if args.runs > 1 else "")
        path = results_dir / f"chaos-{time.strftime('%Y%m%dT%H%M%S')}.json"
        path.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
        bad = result["violations"] or result["lost"] or result["doubled"]
        failed += bool(bad)
        if args.json:
            print(json.dumps(result, default=str))
        else:
            print(f"saga chaos run {n}/{args.runs} ({result['broker']}): "
                  f"{result['settled']}/{result['orders']} "
                  f"settled, lost {result['lost']}, doubled {result['doubled']}, "
                  f"violations {result['violations']}, kills {sum(result['kills'].values())} "
                  f"{result['kills']}, refetched {result['refetched']}, "
                  f"{len(result['faults'])} fault log lines -> {path}")
            for line in result["faults"]:
                if "SIGKILL" not in line:
                    print(f"  {line}")
            if result.get("kept"):
                print(f"  kept for tracing (database, broker, stack state, every function's "
                      f"log): {result['kept']}")
    return 1 if failed else 0
