"""saga logs: the functions' log lines, readable, merged in time order (tools/ops/logs.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "logs", help="the functions' log lines as the console prints them, in time order",
        description="The log lines of one function or of all (<state dir>/logs/*.ndjson, "
        "written by `./taskw up`), one readable line each, merged by their @timestamp. "
        "FUNCTION `knative` is the runtime's own file: deliveries, retries, dead letters.")
    parser.add_argument("function", nargs="?", metavar="FUNCTION",
                        help="only this function's lines (and the runtime's about it)")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="then show the lines written next, until Ctrl-C")
    parser.add_argument("--order", metavar="ID", help="only the lines of this order (its id)")
    parser.add_argument("--since", metavar="DURATION",
                        help="only the lines of the last DURATION, e.g. 30s, 10m, 1h30m")
    parser.add_argument("--json", action="store_true",
                        help="the ECS lines as they are in the files (NDJSON)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import threading
    import time

    from tools.ops import logs
    from tools.ops.context import OpsError, resolve
    from tools.settings import get_local_settings

    try:
        ctx = resolve(get_local_settings())
        wanted = logs.query(ctx, args.function, args.order, args.since, now=time.time())
    except OpsError as exc:
        print(f"saga logs: {exc}", file=sys.stderr)
        return 2
    if (missing := logs.no_logs(ctx)) is not None:
        print(f"saga logs: {missing}", file=sys.stderr)
        return 1
    log_dir = ctx.log_dir
    lines, files = logs.read(log_dir, wanted)
    for line in lines:
        print(line.text(as_json=args.json))
    if not lines and not args.follow:
        print(f"saga logs: no lines{_what(args)} in {log_dir}", file=sys.stderr)
    if args.follow:
        sys.stdout.flush()
        logs.follow(log_dir, wanted, files,
                    lambda line: print(line.text(as_json=args.json), flush=True),
                    threading.Event())  # until Ctrl-C
    return 0


def _what(args: argparse.Namespace) -> str:
    parts = [f"of {args.function}" if args.function else "",
             f"of order {args.order}" if args.order else "",
             f"in the last {args.since}" if args.since else ""]
    return "".join(f" {p}" for p in parts if p)
