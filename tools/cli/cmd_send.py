"""saga send: publish one CloudEvent of a catalogue type to its topic, or POST it to one
function (tools/ops/send.py). Exit 2 for bad input, 1 when the endpoint refused it or the
local runtime could not start the function."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tools.ops.send import Sent


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "send", help="send one event of a catalogue type by hand (to its topic, a function "
        "or a URL): how to reproduce a failure")
    parser.add_argument("type", help="a catalogue type, e.g. shop.order.created.v1")
    parser.add_argument("--data", required=True, metavar="JSON",
                        help="the event's data as JSON, or @FILE to read it from a file")
    parser.add_argument("--id", dest="event_id", metavar="ID",
                        help="the event id (default: a new UUID); an id already handled is "
                        "skipped as a duplicate")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--to", metavar="FUNCTION",
                       help="POST it to this function of the local runtime instead of "
                       "publishing it")
    where.add_argument("--url", help="POST it to this endpoint instead of publishing it")
    parser.add_argument("--json", action="store_true", help="print what was sent as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.ops import send
    from tools.ops.context import OpsError, resolve
    from tools.settings import get_local_settings

    try:
        event = send.build(args.type, send.read_data(args.data), event_id=args.event_id)
        if args.url:
            sent = send.post(args.url, event)
        else:
            ctx = resolve(get_local_settings())
            sent = send.to_function(ctx, args.to, event) if args.to else send.publish(ctx, event)
    except OpsError as exc:
        print(f"saga send: {exc}", file=sys.stderr)
        return 2
    except send.NotStarted as exc:
        print(f"saga send: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(sent.as_dict(), indent=2, default=str) if args.json else _line(sent))
    return 1 if sent.refused else 0


def _line(sent: Sent) -> str:
    what = f"saga send: {sent.event['type']} {sent.event['id']} (order {sent.event['subject']})"
    if sent.url is None:
        return f"{what} -> {sent.topic} partition {sent.partition} offset {sent.offset}"
    body = sent.body if isinstance(sent.body, str) else json.dumps(sent.body)
    cold = " (it was not running: started it)" if sent.cold_start else ""
    return f"{what} -> {sent.url}: {sent.status}{cold}" + (f"\n{body}" if body else "")
