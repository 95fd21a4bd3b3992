"""saga trace ORDER_ID: one order's timeline from the database and the logs
(tools/ops/trace.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("trace", help="one order's timeline: events, functions, outcomes")
    parser.add_argument("order_id", metavar="ORDER_ID",
                        help="the order's UUID, or a unique prefix of 6 or more characters")
    parser.add_argument("--json", action="store_true", help="the entries as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from tools.ops.context import OpsError, resolve
    from tools.ops.orders import NoSuchOrder, resolve_order_id
    from tools.ops.trace import as_json, render, trace
    from tools.settings import get_local_settings

    try:
        ctx = resolve(get_local_settings())
        order_id = resolve_order_id(ctx, args.order_id)
        entries, notes = trace(ctx, order_id)
    except OpsError as exc:
        print(f"saga trace: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, NoSuchOrder) else 2
    except SQLAlchemyError as exc:  # it let us in, then a query failed (not migrated?)
        print(f"saga trace: the database did not answer: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 1
    for note in notes:
        print(f"saga trace: {note}", file=sys.stderr)
    print(json.dumps(as_json(entries), indent=2) if args.json else render(order_id, entries))
    return 0 if entries else 1
