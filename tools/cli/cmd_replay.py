"""saga replay: deliver a KafkaSource's events again by moving its consumer group
(tools/ops/replay.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tools.progress import add_quiet_option


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "replay", help="deliver a KafkaSource's events again (reset its consumer group)",
        description="Move the consumer group of a KafkaSource (or of all) to the earliest "
        "offset, a time or given offsets; the source then delivers those events again. "
        "Every step is idempotent, so this changes no business data.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--source", help="the KafkaSource (metadata.name in kafka-sources/)")
    which.add_argument("--all", action="store_true", help="every KafkaSource")
    to = parser.add_mutually_exclusive_group(required=True)
    to.add_argument("--to", choices=["earliest"], help="the oldest event still kept")
    to.add_argument("--to-time", metavar="ISO8601",
                    help="the first event at or after this time, e.g. 2026-05-01T12:00:00Z")
    to.add_argument("--to-offsets", metavar="P:O,...",
                    help="explicit offsets: PARTITION:OFFSET (one-topic source) or "
                         "TOPIC:PARTITION:OFFSET; other partitions stay as they are")
    parser.add_argument("--topic", action="append", default=[],
                        help="only these topics of the source (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be delivered again; change nothing")
    parser.add_argument("--pause", action="store_true",
                        help="have the local runtime pause the source(s) while offsets move")
    parser.add_argument("--no-wait", action="store_true",
                        help="return once the offsets moved, without following the "
                        "re-delivery until each group's lag is 0")
    parser.add_argument("--wait-timeout", type=float, default=600.0, metavar="SECONDS",
                        help="follow the re-delivery this long at most (default 600; exit 1 "
                        "if events are still to deliver then)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from tools.ops.context import OpsError, resolve
    from tools.ops.kafka_admin import kafka_ops
    from tools.ops.replay import (
        Target,
        execute,
        parse_time,
        plan,
        render,
        render_wait,
        wait_redelivered,
    )
    from tools.progress import Progress
    from tools.runtime.control import ControlError
    from tools.settings import get_local_settings

    def report(line: str) -> None:
        print(f"saga replay: {line}", file=sys.stderr if args.json else sys.stdout)

    try:
        if args.wait_timeout <= 0:
            raise OpsError("--wait-timeout must be more than 0 seconds (--no-wait: do not "
                           "wait at all)")
        if args.all and (args.to_offsets or args.topic):
            raise OpsError("--to-offsets and --topic name partitions of one source: use "
                           "--source NAME")
        ctx = resolve(get_local_settings())
        settings = ctx.require_kafka()
        sources = (sorted(ctx.manifests.kafka_sources.values(), key=lambda s: s.name)
                   if args.all else [ctx.source(args.source)])
        target = (Target("time", millis=parse_time(args.to_time)) if args.to_time else
                  Target("offsets", offsets=args.to_offsets) if args.to_offsets else
                  Target("earliest"))
        with kafka_ops(settings) as kafka:
            plans = [plan(kafka, source, target, args.topic) for source in sources]
            if args.json:
                print(json.dumps([p.as_dict() for p in plans], indent=2))
            else:
                print(render(plans, dry_run=args.dry_run))
            if args.dry_run:
                return 0
            moved = execute(ctx, kafka, plans, pause=args.pause, report=report)
            if args.no_wait:
                return 0
            waited = wait_redelivered(
                kafka, moved, timeout_s=args.wait_timeout,
                progress=Progress.on_stderr("saga replay", quiet=args.quiet))
            for line in render_wait(waited, moved):
                report(line)
    except (OpsError, ControlError, KafkaException) as exc:
        print(f"saga replay: {exc}", file=sys.stderr)
        return 2
    return 0 if waited.done else 1
