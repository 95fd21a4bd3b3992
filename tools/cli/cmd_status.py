"""saga status: functions, sources and their lag, outbox backlog, dead letters
(tools/ops/status.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("status",
                            help="functions, consumer lag, outbox, dead letters, table sizes")
    parser.add_argument("--json", action="store_true", help="one JSON document (stable form)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.ops.context import OpsError, resolve
    from tools.ops.status import collect, render
    from tools.settings import get_local_settings

    try:
        status = collect(resolve(get_local_settings()))
    except OpsError as exc:
        print(f"saga status: {exc}", file=sys.stderr)
        return 2
    for note in status.notes:
        print(f"saga status: {note}", file=sys.stderr)
    print(json.dumps(status.document, indent=2) if args.json else render(status.document))
    return 1 if status.failed else 0
