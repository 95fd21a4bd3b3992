"""How ./taskw runs Task (`python -m tools.task_launcher TASK ARGS...`, in ./taskw's pid).
Task only logs a SIGINT or SIGTERM sent to it and waits for its commands (in its process
group), so a signal to ./taskw's pid or group stopped nothing. Here Task runs in a process
group of its own, and each SIGINT, SIGTERM or SIGHUP received is sent once to that group.
With a terminal the group gets its foreground: Ctrl-C reaches it directly (never through
here, so never twice), Ctrl-Z stops it and this process too, interactive tasks can read
the terminal. Exits with Task's status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from types import FrameType

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _foreground_tty() -> int | None:
    """stdin's descriptor if it is a terminal whose foreground is our process group."""
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


@contextlib.contextmanager
def _ttou_ignored() -> Iterator[None]:
    """tcsetpgrp() from a background group raises SIGTTOU, which would stop us."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTTOU, previous)


def _give_terminal(tty: int | None, group: int) -> None:
    if tty is not None:
        with _ttou_ignored(), contextlib.suppress(OSError):
            os.tcsetpgrp(tty, group)


class _Forwarder:
    """Sends each signal received to the child's group; remembers those that arrive before
    the child exists."""

    def __init__(self, tty: int | None) -> None:
        self.group: int | None = None
        self.pending: list[int] = []
        self._me, self._tty = os.getpid(), tty

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != self._me:  # in the fork, before exec: not ours to forward
            return
        if self.group is None:
            self.pending.append(signum)
            return
        if signum == signal.SIGHUP and self._terminal_hangs_up_on_them():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.group, signum)

    def _terminal_hangs_up_on_them(self) -> bool:
        """When the shell that leads the session exits on a closed terminal, the kernel
        sends SIGHUP to the group in the terminal's foreground itself, and the shell has
        sent its own to us: forwarding that one too would make two. (Leading the session
        ourselves, we get the only SIGHUP the group would see before we exit.)"""
        if self._tty is None or os.getsid(0) == self._me:
            return False
        try:
            return os.tcgetpgrp(self._tty) == self.group
        except OSError:  # the terminal is gone already
            return True

    def started(self, group: int) -> None:
        self.group = group
        for signum in self.pending:
            self(signum, None)
        self.pending.clear()


def run(command: list[str]) -> int:
    tty = _foreground_tty()
    ours = os.getpgrp()
    forward = _Forwarder(tty)
    for sig in FORWARDED:
        signal.signal(sig, forward)

    def in_child() -> None:  # after setpgid, before exec: take the terminal at once, so
        _give_terminal(tty, os.getpgrp())  # the child never reads it as a background job

    child = subprocess.Popen(command, process_group=0,
                             preexec_fn=in_child if tty is not None else None)  # noqa: PLW1509
    _give_terminal(tty, child.pid)  # also here: whichever of the two runs first
    forward.started(child.pid)
    try:
        while True:
            _pid, status = os.waitpid(child.pid, os.WUNTRACED)
            if not os.WIFSTOPPED(status):
                break
            if tty is None:  # stopped by someone else's SIGSTOP: theirs to continue
                continue
            # Ctrl-Z stopped Task's group: stop too, so the shell sees its job stopped, and
            # on `fg` give the terminal back and let the group go on.
            _give_terminal(tty, ours)
            os.kill(os.getpid(), signal.SIGSTOP)
            _give_terminal(tty, child.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGCONT)
    finally:
        _give_terminal(tty, ours)
    child.returncode = os.waitstatus_to_exitcode(status)
    code = child.returncode
    return code if code >= 0 else 128 - code


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m tools.task_launcher TASK [ARGS...]", file=sys.stderr)
        return 2
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
