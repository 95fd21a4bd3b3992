"""The forced stop of tools/runtime/stopping.py on a runtime whose graceful stop hangs
(fixtures/stubborn_runtime.py): past its deadline, or at a second signal, every process
under the runtime is killed (also one that ignores SIGTERM, and a grandchild), the state
marker says "stopped", and the runtime exits with 128 + the signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import wait_for
from tools import REPO_ROOT
from tools.runtime.state import read_state

RUNTIME = str(REPO_ROOT / "tests" / "workflow" / "fixtures" / "stubborn_runtime.py")
FORCE_AFTER_S = 1.0


@pytest.mark.parametrize("second_signal", [False, True], ids=["deadline", "second-signal"])
def test_a_stop_that_hangs_is_forced_and_leaves_nothing(tmp_path: Path,
                                                        second_signal: bool) -> None:
    output = tmp_path / "console.log"
    with output.open("wb") as out:
        runtime = subprocess.Popen([sys.executable, RUNTIME, str(tmp_path), str(FORCE_AFTER_S)
                                    if not second_signal else "60"], cwd=REPO_ROOT,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_for(lambda: "ready" in output.read_text(), timeout=20,
                 message="the runtime to be ready")
        def whole() -> list[psutil.Process] | None:
            found = psutil.Process(runtime.pid).children(recursive=True)
            return found if len(found) == 3 else None

        family = wait_for(whole, timeout=20, message="two children and a grandchild")
        since = time.monotonic()
        runtime.send_signal(signal.SIGTERM)
        if second_signal:
            wait_for(lambda: "stopping" in output.read_text(), timeout=5,
                     message="the graceful stop to begin")
            runtime.send_signal(signal.SIGINT)
        code = runtime.wait(FORCE_AFTER_S + 5)
        took = time.monotonic() - since
    finally:
        if runtime.poll() is None:
            runtime.kill()
            runtime.wait()
    console = output.read_text()
    assert code == 128 + (signal.SIGINT if second_signal else signal.SIGTERM), console
    assert psutil.wait_procs(family, timeout=2)[1] == [], console
    assert (read_state(tmp_path) or {}).get("phase") == "stopped"
    assert "stopped (forced)" in console
    assert ("SIGINT received again" if second_signal else "still stopping 1 s after SIGTERM") \
        in console
    assert took < (3.0 if second_signal else FORCE_AFTER_S + 3.0), took
