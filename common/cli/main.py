"""`saga` entry point: parses arguments and dispatches to one small module per command.
Imports happen inside the commands so `saga --help` stays fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

Command = Callable[[argparse.Namespace], int]

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cmd_up(args: argparse.Namespace) -> int:
    from common.runtime.up import run_up
    from common.settings import get_settings

    exit_code: int = run_up(get_settings(), root=REPO_ROOT)
    return exit_code


def _cmd_token(args: argparse.Namespace) -> int:
    from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, issue_token
    from common.settings import get_settings

    roles = [CUSTOMER_ROLE, ADMIN_ROLE] if args.admin else [CUSTOMER_ROLE]
    print(issue_token(get_settings(), args.customer, roles=roles, ttl_s=args.ttl))
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from common import migrate
    from common.infra.resolve import infrastructure
    from common.settings import get_settings

    settings = get_settings()
    with infrastructure(settings, Path(settings.state_dir), need_kafka=False) as infra:
        if args.down:
            migrate.downgrade(infra.database_url, args.revision)
        else:
            migrate.upgrade(infra.database_url, args.revision)
        print(f"database at revision {migrate.current_revision(infra.database_url)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saga", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("up", help="run the whole system locally (embedded defaults)").set_defaults(
        func=_cmd_up
    )

    token = sub.add_parser("token", help="print a JWT the local API accepts")
    token.add_argument("--customer", required=True, help="the customer id (JWT subject)")
    token.add_argument("--admin", action="store_true", help="also grant the admin role")
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    token.set_defaults(func=_cmd_token)

    migrate = sub.add_parser("migrate", help="apply Alembic migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.add_argument("--down", action="store_true", help="downgrade to REVISION")
    migrate.set_defaults(func=_cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
