"""saga down: stop the stack `saga up` runs on this state dir (see tools/runtime/detached.py)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "down", help="stop the stack `saga up` runs on SAGA_STATE_DIR, detached or not, and "
        "wait until every process of it is gone")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools import REPO_ROOT
    from tools.runtime.detached import stop_stack
    from tools.runtime.state import resolve_state_dir
    from tools.settings import get_local_settings

    return stop_stack(resolve_state_dir(get_local_settings().state_dir, REPO_ROOT))
