"""`saga up --detach`: `saga up` again, in a session of its own (no terminal: no Ctrl-C or
hang-up reaches it), its console appended to <state dir>/logs/up.log; returns once
runtime-state.json says the stack runs, or shows why it did not start.
`saga down`: SIGTERM to the `saga up` holding the state dir (state.held), detached or not;
waits until it and every process under it are gone, with a second SIGTERM (which forces)
if they outlast the runtime's own deadline, and SIGKILL as a last resort.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

import psutil

from tools.runtime.state import StackRunning, held, read_state, runtime_holds
from tools.runtime.stopping import FORCE_AFTER_S, kill_descendants, wait_gone

UP_LOG = "up.log"
_POLL_S = 0.1  # reading runtime-state.json while a stack starts or stops


def start_detached(up_args: Sequence[str], *, state_dir: Path, root: Path,
                   timeout: float = 300.0) -> int:
    """Start `saga up up_args...` in the background; 0 once it runs, 1 if it did not start,
    2 if a stack already runs on `state_dir`."""
    try:
        with held(state_dir):
            pass  # free now; the child takes it (and refuses, if another one came first)
    except StackRunning as exc:
        print(f"up: {exc}", file=sys.stderr)
        return 2
    log_path = state_dir / "logs" / UP_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    offset = log_path.stat().st_size if log_path.exists() else 0
    started = time.monotonic()
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "tools.cli.main", "up", *up_args], cwd=root,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    print(f"up: starting the stack in the background (pid {child.pid}); its console goes "
          f"to {log_path}", flush=True)
    try:
        with _interrupts_raise():
            state = _wait_running(child, state_dir, started + timeout)
    except KeyboardInterrupt:
        print("up: interrupted; stopping the stack that was starting", file=sys.stderr)
        _stop_child(child)
        return 130
    if state is None:
        if time.monotonic() >= started + timeout:
            print(f"up: the stack did not say it runs within {timeout:.0f} s; stopping it",
                  file=sys.stderr)
        _stop_child(child)  # a failed start is unwinding already: this waits for its end
        print(f"up: the stack did not start; the end of {log_path}:\n"
              f"{_tail(log_path, offset)}", file=sys.stderr)
        return 1
    api = state.get("api_url") or "-"
    print(f"up: the stack runs in the background (pid {child.pid}), ready in "
          f"{time.monotonic() - started:.1f} s\n"
          f"  API      {api}   (Swagger UI: {api}/docs)\n"
          f"  console  {state.get('console_url') or '-'}   (operators)\n"
          f"  output   {log_path}\n"
          f"  logs     {state.get('log_dir')}/<function>.ndjson\n"
          "  stop     saga down   (./taskw down)", flush=True)
    return 0


def stop_stack(state_dir: Path, *, timeout: float = FORCE_AFTER_S + 4.0) -> int:
    """Stop the stack running on `state_dir`; 0 once every process of it is gone (also when
    nothing ran), 1 if some had to be killed."""
    if not runtime_holds(state_dir):
        print(f"down: nothing runs on {state_dir}")
        return 0
    state = read_state(state_dir) or {}
    try:
        runtime = psutil.Process(int(state["pid"]))
        family = [runtime, *runtime.children(recursive=True)]
    except (KeyError, TypeError, ValueError, psutil.Error):
        print(f"down: {state_dir} is held, but runtime-state.json names no live runtime "
              "(another program holds runtime.lock?)", file=sys.stderr)
        return 1
    began = time.monotonic()
    print(f"down: stopping the stack on {state_dir} (pid {runtime.pid}, {len(family)} "
          "processes) ...", flush=True)
    with contextlib.suppress(psutil.Error):
        runtime.send_signal(signal.SIGTERM)
    alive = wait_gone(family, timeout)
    if alive:  # the runtime forces at its own deadline; this is the second signal
        with contextlib.suppress(psutil.Error):
            runtime.send_signal(signal.SIGTERM)
        alive = wait_gone(alive, 5.0)
    if alive:
        print(f"down: still running after {time.monotonic() - began:.0f} s: "
              f"{sorted(p.pid for p in alive)}; killing them", file=sys.stderr)
        kill_descendants(runtime)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        wait_gone(alive, 5.0)
        return 1
    print(f"down: stopped in {time.monotonic() - began:.1f} s")
    return 0


def _wait_running(child: subprocess.Popen[bytes], state_dir: Path,
                  deadline: float) -> dict[str, object] | None:
    """runtime-state.json of `child` once it says running; None if it failed or exited, or
    at the deadline."""
    while time.monotonic() < deadline:
        state = read_state(state_dir) or {}
        if state.get("pid") == child.pid:
            if state.get("phase") == "running":
                return state
            if state.get("phase") in ("failed", "stopped"):
                return None
        if child.poll() is not None:
            return None
        time.sleep(_POLL_S)  # the stack's start, bounded by the deadline
    return None


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM, the runtime's own stop; a second one (forcing) if it takes too long."""
    for _attempt in range(2):
        if child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(FORCE_AFTER_S + 4.0)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def _interrupts_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the wait as Ctrl-C does."""
    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _tail(path: Path, offset: int, lines: int = 30) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        text = log.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])

