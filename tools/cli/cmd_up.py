"""saga up: the whole system on this machine (see tools/runtime/up.py)."""

from __future__ import annotations

import argparse
from typing import Any

BROKERS = ("embedded", "kafka")


def register(sub: Any) -> None:
    parser = sub.add_parser("up", help="run the whole system locally (embedded defaults)")
    add_broker_option(parser)
    parser.add_argument(
        "--detach", action="store_true",
        help="run in the background: return once the stack is healthy, its console in "
        "SAGA_STATE_DIR/logs/up.log; `saga down` stops it")
    parser.set_defaults(func=run)


def add_broker_option(parser: argparse.ArgumentParser) -> None:
    """--broker, shared by the commands that start a stack (up, bench, chaos)."""
    parser.add_argument(
        "--broker", choices=BROKERS, default=None,
        help="the broker to start when KAFKA_BOOTSTRAP_SERVERS is unset: embedded (Tansu, "
        "in memory, the default) or kafka (Apache Kafka 4, durable under SAGA_STATE_DIR/kafka;"
        " needs Java 17+ and Maven); default: SAGA_BROKER, else embedded")


def run(args: argparse.Namespace) -> int:
    from tools import REPO_ROOT
    from tools.runtime.detached import start_detached
    from tools.runtime.proctitle import set_title
    from tools.runtime.state import resolve_state_dir
    from tools.runtime.up import run_up
    from tools.settings import get_local_settings

    settings = get_local_settings()
    if args.detach:
        return start_detached(["--broker", args.broker] if args.broker else [],
                              state_dir=resolve_state_dir(settings.state_dir, REPO_ROOT),
                              root=REPO_ROOT)
    set_title("up")
    if args.broker is not None:
        settings = settings.model_copy(update={"broker": args.broker})
    return run_up(settings, root=REPO_ROOT)
