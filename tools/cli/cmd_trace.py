"""saga trace ORDER_ID: one order's timeline from the database and the logs
(tools/ops/trace.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("trace", help="one order's timeline: events, functions, outcomes")
    parser.add_argument("order_id", metavar="ORDER_ID")
    parser.add_argument("--json", action="store_true", help="the entries as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from tools.ops.context import OpsError, resolve
    from tools.ops.trace import as_json, render, trace
    from tools.settings import get_local_settings

    try:
        entries, notes = trace(resolve(get_local_settings()), args.order_id)
    except (OpsError, SQLAlchemyError) as exc:
        print(f"saga trace: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"saga trace: {note}", file=sys.stderr)
    print(json.dumps(as_json(entries), indent=2) if args.json else
          render(args.order_id, entries))
    return 0 if entries else 1
