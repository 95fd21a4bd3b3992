"""Which commit a bench measured: the project's HEAD, short, or None outside a git tree."""

from __future__ import annotations

import subprocess

from tools import REPO_ROOT


def head_commit() -> str | None:
    try:  # read-only
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
