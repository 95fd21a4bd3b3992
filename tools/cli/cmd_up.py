"""saga up: the whole system on this machine (see tools/runtime/up.py)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("up", help="run the whole system locally (embedded defaults)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools import REPO_ROOT
    from tools.runtime.up import run_up
    from tools.settings import get_local_settings

    return run_up(get_local_settings(), root=REPO_ROOT)
