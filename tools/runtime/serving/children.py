"""Starting and ending child processes so that none is ever left behind. Each child gets its
own process group (a Ctrl-C in the terminal reaches the runtime only, which stops the
children in order; a stop reaches a server's workers too) and, on Linux,
PR_SET_PDEATHSIG: if the runtime dies without cleaning up, the kernel sends the child
SIGTERM. That fires when the *thread* that forked the child exits, so every child is forked
from one long-lived spawner thread. Once a forced stop began (refuse_new(), stopping.py),
no child is started any more."""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Protocol

_PR_SET_PDEATHSIG = 1
_refused = threading.Event()


def refuse_new() -> None:
    """From now on start no child: the process is being forced down (stopping.py)."""
    _refused.set()


def wait_if_refused() -> None:
    """Block for good once refuse_new() was called: the forced stop ends the process."""
    if _refused.is_set():
        threading.Event().wait()


class Child(Protocol):
    """A child process as the runtime uses it: a subprocess.Popen, or a function process
    forked by the zygote (zygote_client.ZygoteProcess)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    @property
    def stderr(self) -> IO[bytes] | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def _pdeathsig_hook() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    parent = os.getpid()

    # Runs in the child between fork and exec: only async-signal-safe work (one syscall,
    # one getppid) and the function pointer was resolved above, before forking.
    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


class _Spawner:
    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[Callable[[], subprocess.Popen[bytes]],
                                          Future[subprocess.Popen[bytes]]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, factory: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="runtime-spawner",
                                                daemon=True)
                self._thread.start()
        future: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((factory, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            factory, future = self._requests.get()
            try:
                future.set_result(factory())
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)


_spawner = _Spawner()


def spawn(args: Sequence[str], *, cwd: Path, env: dict[str, str],
          pass_fds: Sequence[int] = (), stdout: int | None = None) -> subprocess.Popen[bytes]:
    """Start `args` in its own process group with stdout+stderr on one pipe (`.stdout`) or,
    given a `stdout` file descriptor, stdout there and stderr on the pipe (`.stderr`);
    `pass_fds` stay open in the child."""
    wait_if_refused()
    hook = _pdeathsig_hook()

    def factory() -> subprocess.Popen[bytes]:
        wait_if_refused()  # a request queued before the refusal
        return subprocess.Popen(
            list(args), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.STDOUT if stdout is None else subprocess.PIPE,
            process_group=0, preexec_fn=hook,  # noqa: PLW1509
            close_fds=True, pass_fds=tuple(pass_fds))

    return _spawner.run(factory)


def terminate(process: Child, grace: float, *,
              first: int = signal.SIGTERM) -> int | None:
    """Signal the process group (SIGTERM unless `first` says otherwise), SIGKILL it after
    `grace` seconds; the exit code."""
    if process.poll() is None:
        _signal_group(process, first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    # Also when the leader is gone: a worker it forked may still be in the group.
    if process.poll() is None or _group_alive(process):
        _signal_group(process, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
    return process.returncode


def _group_alive(process: Child) -> bool:
    try:
        os.killpg(process.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(process: Child, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # pid == pgid: process_group=0 made it the leader
