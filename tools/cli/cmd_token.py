"""saga token: print a JWT the local API accepts."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("token", help="print a JWT the local API accepts")
    parser.add_argument("--customer", required=True, help="the customer id (JWT subject)")
    parser.add_argument("--admin", action="store_true", help="also grant the admin role")
    parser.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, ConfigError, issue_token
    from tools.settings import get_local_settings, with_jwt_secret

    roles = [CUSTOMER_ROLE, ADMIN_ROLE] if args.admin else [CUSTOMER_ROLE]
    try:
        settings = with_jwt_secret(get_local_settings())
        print(issue_token(settings, args.customer, roles=roles, ttl_s=args.ttl))
    except ConfigError as exc:
        print(f"saga token: {exc}")
        return 2
    return 0
