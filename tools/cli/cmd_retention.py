"""saga retention [--dry-run]: the retention sweep once, now (tools/ops/retention.py)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "retention", help="delete the inbox, outbox, idempotency and dead-letter rows past "
        "their retention, now (--dry-run: count them)")
    parser.add_argument("--dry-run", action="store_true",
                        help="count what would be deleted; delete nothing")
    parser.add_argument("--budget", type=float, default=math.inf, metavar="SECONDS",
                        help="stop deleting after this long (default: when done; every batch "
                        "commits on its own, so Ctrl-C is safe too)")
    parser.add_argument("--json", action="store_true", help="the counts as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from tools.ops.context import OpsError, resolve
    from tools.ops.retention import render, run_sweep
    from tools.settings import get_local_settings

    if args.budget <= 0:
        print("saga retention: --budget must be more than 0 seconds", file=sys.stderr)
        return 2
    try:
        counts, notes = run_sweep(resolve(get_local_settings()), dry_run=args.dry_run,
                                  budget_s=args.budget)
    except OpsError as exc:
        print(f"saga retention: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # it let us in, then a statement failed (not migrated?)
        print(f"saga retention: the database did not answer: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 1
    for note in notes:
        print(f"saga retention: {note}", file=sys.stderr)
    print(json.dumps(counts, indent=2) if args.json else render(counts))
    return 0
