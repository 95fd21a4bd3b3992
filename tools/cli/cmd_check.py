"""saga check: the saga's invariants on any database; exit 1 with the violating rows named."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "check", help="check the invariants (money, stock, one capture/shipment, settled "
        "orders, outbox, dead letters); exit 1 naming the violating rows")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--database-url", help="default: DATABASE_URL, else the running stack's")
    parser.add_argument("--customer-prefix", help="only orders and wallets of these customers")
    parser.add_argument("--sku-prefix", help="only these SKUs (default: those the scoped "
                        "orders bought, or all)")
    parser.add_argument("--since", type=datetime.fromisoformat,
                        help="only orders created at or after this ISO time")
    parser.add_argument("--expect-dead-letters", type=int, default=0, metavar="N",
                        help="dead letters waiting (as `saga dlq list` shows) that the run "
                        "expected (default 0)")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="re-check until clean for up to this long (after a load)")
    parser.add_argument("--window-grace", type=float, default=90.0, metavar="SECONDS",
                        help="how long past its deadline an unpaid order may wait for the "
                        "timeouts sweep (default 90)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.infra.reach import check_database, setting_origin
    from tools.loadgen.check import Options, Scope, engine_for, run_check, settle
    from tools.loadgen.target import database_url
    from tools.ops.context import resolve
    from tools.settings import get_local_settings

    # Nothing to check (no stack, nothing set) or a database that does not let us in is
    # Unreachable: one line on stderr, exit 1 (tools/cli/main.py), as for every command.
    if args.database_url:
        url = args.database_url
        check_database(url, *setting_origin("--database-url"))
    else:
        url = database_url(resolve(get_local_settings()))
    scope = Scope(args.customer_prefix, args.sku_prefix, args.since)
    options = Options(expected_dead_letters=args.expect_dead_letters,
                      window_grace_s=args.window_grace)
    engine = engine_for(url)
    try:
        report = settle(lambda: run_check(engine, scope, options), timeout_s=args.wait)
    finally:
        engine.dispose()
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.summary())
    return 0 if report.ok else 1
