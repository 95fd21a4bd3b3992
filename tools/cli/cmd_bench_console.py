"""saga bench-console: the console's overview, find and stuck queries on 100,000 orders,
timed, with the indexes their plans use (tools/bench/console.py)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench-console", help="the console's overview, find and stuck on 100,000 orders: "
        "p50/p95/max per request and the indexes of its plans (DATABASE_URL, or an "
        "embedded PostgreSQL)")
    parser.add_argument("--orders", type=int, default=100_000,
                        help="orders to fill the database with (default 100000)")
    parser.add_argument("--json", action="store_true", help="print the JSON, not the table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.bench.console import main

    if args.orders < 1_000:
        print("saga bench-console: --orders must be at least 1000 (the scenarios need pages)")
        return 2
    return main(args.orders, as_json=args.json)
