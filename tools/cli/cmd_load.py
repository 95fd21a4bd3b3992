"""saga load: customers placing orders through the public API of a running stack."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tools.progress import add_quiet_option


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "load", help="drive the API like customers (register, deposit, order, pay, cancel) "
        "and record each order's submit and terminal time")
    parser.add_argument("--orders", type=int, default=1000)
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="orders per second (open loop)")
    pace.add_argument("--max", action="store_true",
                      help="as fast as --concurrency customers go (the default)")
    parser.add_argument("--mix", default="happy=1", help="e.g. happy=60,out_of_stock=8,"
                        "insufficient_funds=8,timeout=4,cancel=8,shipping_failed=6,confirm=6; "
                        "'full' is that mix")
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16,
                        help="customers ordering at once with --max")
    parser.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                        help="how long to wait for the orders to settle")
    parser.add_argument("--wait-timeouts", action="store_true",
                        help="also wait for unpaid orders to time out (SAGA_PAYMENT_WINDOW_S)")
    parser.add_argument("--api-url", help="default: the running stack's")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--records", metavar="FILE", help="write every order's record (JSON)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import urllib3

    from tools import REPO_ROOT
    from tools.loadgen.driver import LoadSpec, run_load
    from tools.loadgen.mix import MixError
    from tools.loadgen.records import write_records
    from tools.loadgen.target import resolve
    from tools.progress import Progress
    from tools.settings import get_local_settings

    try:
        spec = LoadSpec(orders=args.orders, rate=args.rate, mix=args.mix,
                        customers=args.customers, concurrency=args.concurrency,
                        wait_s=args.wait, wait_timeouts=args.wait_timeouts, seed=args.seed)
        spec.plan()
    except MixError as exc:
        print(f"saga load: {exc}", file=sys.stderr)
        return 2
    # No stack to load, or its database not letting us in: Unreachable, one line, exit 1.
    target = resolve(get_local_settings(), REPO_ROOT, args.api_url)
    try:
        outcome = run_load(target.api_url, target.database_url, target.admin_token(), spec,
                           progress=Progress.on_stderr("saga load", quiet=args.quiet))
    except (urllib3.exceptions.HTTPError, ConnectionError) as exc:
        # Placing orders counts refused requests itself; this is the API gone while the run
        # set up its customers and products (or while it waited): no traceback, the fix.
        print(f"saga load: lost the API at {target.api_url} ({exc}); is `./taskw up` "
              "still running? Start it and run the load again.")
        return 1
    figures = outcome.figures()
    if args.records:
        write_records(args.records, outcome.result.records)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"saga load {spec.run_id}: {figures['accepted']}/{figures['orders']} accepted, "
              f"{figures['settled']} settled, {figures['orders_per_s']} orders/s end to end, "
              f"p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
              f"p99 {figures['p99_ms']} ms")
        for scenario, outcomes in figures["outcomes"].items():
            print(f"  {scenario:<19} " + ", ".join(f"{k}: {n}" for k, n in outcomes.items()))
        print(f"  check this run: saga check --customer-prefix {spec.run_id}-")
    return 0 if figures["post_failed"] == 0 and figures["unsettled"] == 0 else 1
