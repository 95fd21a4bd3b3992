"""A `saga up` of a test's own, for e2e tests that need settings the session's
`local_stack` does not have (a restart, a shorter delivery backoff)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers import wait_for
from tools import REPO_ROOT
from tools.runtime.state import read_state


@contextmanager
def saga_up(env: dict[str, str], state_dir: Path, log: Path) -> Iterator[dict[str, Any]]:
    """`saga up` until the block ends (Ctrl-C); its runtime-state.json once running."""
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "tools.cli.main", "up"],
                                   cwd=REPO_ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def running() -> dict[str, Any] | None:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            state = read_state(state_dir) or {}
            return state if state.get("phase") == "running" and \
                state.get("pid") == process.pid else None

        yield wait_for(running, timeout=90, interval=0.2, message="saga up to be running")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(60) == 0, log.read_text(errors="replace")[-3000:]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
