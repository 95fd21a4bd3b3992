"""saga up: the whole system on this machine (see common/runtime/up.py)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("up", help="run the whole system locally (embedded defaults)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from common.cli.main import REPO_ROOT
    from common.runtime.up import run_up
    from common.settings import get_settings

    return run_up(get_settings(), root=REPO_ROOT)
