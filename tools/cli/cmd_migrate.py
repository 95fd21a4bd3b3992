"""saga migrate: bring the database to an Alembic revision."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("migrate", help="apply Alembic migrations")
    parser.add_argument("revision", nargs="?", default="head")
    parser.add_argument("--down", action="store_true", help="downgrade to REVISION")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from common import migrate
    from tools.infra.resolve import infrastructure
    from tools.settings import get_local_settings

    settings = get_local_settings()
    with infrastructure(settings, Path(settings.state_dir), need_kafka=False) as infra:
        if args.down:
            migrate.downgrade(infra.database_url, args.revision)
        else:
            migrate.upgrade(infra.database_url, args.revision)
        print(f"database at revision {migrate.current_revision(infra.database_url)}")
    return 0
