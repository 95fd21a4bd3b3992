"""saga demo: a guided tour of the system (see tools/demo/). Thin: parse, then run."""

from __future__ import annotations

import argparse
from typing import Any

from tools.progress import add_quiet_option


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo", help="walk through every way an order can end (starts its own stack)",
        description="Register two customers, place seven orders that end in every way an "
        "order can end, and print their timelines, the wallets and the notifications. "
        "Exits 1 if an order did not end as expected, 2 if there was no stack to run on.")
    parser.add_argument(
        "--attach", action="store_true",
        help="use the stack `./taskw up` is running (found in SAGA_STATE_DIR) instead of "
        "starting one; the payment_timeout order is only waited for if that stack's "
        "payment window is short (SAGA_PAYMENT_WINDOW_S)")
    parser.add_argument(
        "--payment-window", type=int, default=5, metavar="SECONDS",
        help="payment window of the demo's own stack (default 5)")
    parser.add_argument(
        "--wait-for-ping", action="store_true",
        help="let the timeouts PingSource (every minute) cancel the unpaid order instead "
        "of running the same sweep at once (adds up to a minute)")
    parser.add_argument(
        "--keep", action="store_true",
        help="leave the demo's own stack running afterwards (look around in the cabinet), "
        "until Ctrl-C")
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from tools.demo.run import Options, main
    from tools.progress import Progress
    from tools.settings import get_local_settings

    if args.payment_window < 1:
        print("saga demo: --payment-window must be at least 1 second", file=sys.stderr)
        return 2
    options = Options(attach=args.attach, payment_window_s=args.payment_window,
                      wait_for_ping=args.wait_for_ping, keep=args.keep)
    return main(options, get_local_settings(), sys.stdout,
                Progress.on_stderr("saga demo", quiet=args.quiet))
