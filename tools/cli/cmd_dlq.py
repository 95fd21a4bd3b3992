"""saga dlq: list, show, re-drive or resolve dead letters (tools/ops/dlq.py); with no
action it lists, as `saga dlq list`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("dlq", help="inspect and re-drive dead letters")
    commands = parser.add_subparsers(dest="dlq_command", metavar="ACTION")
    listing = commands.add_parser("list", help="dead letters waiting (--all: every one); "
                                  "the default action")
    listing.add_argument("--all", action="store_true", help="also re-driven and resolved ones")
    listing.add_argument("--json", action="store_true")
    show = commands.add_parser("show", help="one dead letter: error, attributes, data")
    show.add_argument("id", type=int)
    redrive = commands.add_parser("redrive", help="send dead letters again, once fixed")
    which = redrive.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", type=int, nargs="*", default=[], metavar="ID",
                       help="the dead letters (see `saga dlq list`)")
    which.add_argument("--all", action="store_true", help="every dead letter waiting")
    redrive.add_argument("--topic", help="topic to send to (default: its type's topic)")
    redrive.add_argument("--force", action="store_true",
                         help="also a letter already re-driven or resolved (given by ID)")
    resolve = commands.add_parser("resolve", help="mark as dealt with, without re-driving")
    resolve.add_argument("ids", type=int, nargs="+")
    parser.set_defaults(func=run, dlq_command="list", all=False, json=False)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from tools.ops import dlq
    from tools.ops.context import OpsError, resolve
    from tools.settings import get_local_settings

    try:
        ctx = resolve(get_local_settings())
        if args.dlq_command == "list":
            items = dlq.list_dead_letters(ctx, everything=args.all)
            print(json.dumps(items, indent=2) if args.json else _table(items))
        elif args.dlq_command == "show":
            print(json.dumps(dlq.show(ctx, args.id), indent=2, default=str))
        elif args.dlq_command == "redrive":
            if args.force and args.all:
                raise OpsError("--all re-drives only waiting letters; --force needs the "
                               "letters' ids: `saga dlq redrive ID... --force`")
            sent = dlq.redrive(ctx, None if args.all else args.ids, topic=args.topic,
                               force=args.force)
            for dead_letter, topic in sent:
                print(f"saga dlq: re-drove dead letter {dead_letter} to {topic}")
            if not sent:
                print("saga dlq: no dead letter is waiting")
        else:
            dlq.resolve(ctx, args.ids)
            print(f"saga dlq: resolved {', '.join(map(str, args.ids))}")
    except (OpsError, SQLAlchemyError) as exc:
        print(f"saga dlq: {exc}", file=sys.stderr)
        return 2
    return 0


def _table(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no dead letters waiting (`saga dlq list --all` also shows handled ones)"
    lines = [f"{'ID':>5}  {'STORED':<20} {'TYPE':<28} {'ORDER':<10}{'CODE':>5}  "
             f"{'FAILED AT':<14} STATE"]
    for item in items:
        state = item["state"] + (f" {item['redrive_count']}x" if item["redrive_count"] else "")
        if item["redrive_of"] is not None:
            state += f", failure of re-driving {item['redrive_of']}"
        lines.append(f"{item['id']:>5}  {item['created_at'][:19]:<20} {item['type']:<28} "
                     f"{str(item['order_id'] or '-')[:8]:<10}{item['error_code'] or '-':>5}  "
                     f"{item['failed_at'] or '-':<14} {state}")
    return "\n".join(lines)
