"""tools/task_launcher.py, which ./taskw runs Task through, with a stand-in for Task
(fixtures/signal_recorder.py): a signal to the launcher's pid or process group reaches
the child's group exactly once; with a terminal the child's group gets its foreground, so
Ctrl-C reaches it directly (once) and it reads the terminal without being stopped; Task's
exit code comes back."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import termios
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tools import REPO_ROOT

RECORDER = str(REPO_ROOT / "tests" / "workflow" / "fixtures" / "signal_recorder.py")
LAUNCHER = [sys.executable, "-m", "tools.task_launcher", sys.executable, RECORDER]


class Output:
    """What a process wrote to a pipe or a terminal, read as it comes."""

    def __init__(self, fd: int) -> None:
        self.fd, self.text = fd, ""

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def wait_for(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            readable, _, _ = select.select([self.fd], [], [], 0.05)
            if readable:
                with contextlib.suppress(OSError):  # a terminal whose last writer is gone
                    self.text += os.read(self.fd, 4096).decode(errors="replace")
            return re.search(pattern, self.text)

        return wait_for(found, timeout=timeout, interval=0.0,
                        message=f"{pattern!r} in the output; so far: {self.text!r}")


@contextmanager
def launched(*, terminal: bool, args: tuple[str, ...] = ()) -> Iterator[
        tuple[subprocess.Popen[bytes], Output]]:
    """The launcher in a session of its own: on a new pseudo-terminal (its controlling
    terminal) or on pipes."""
    if terminal:
        controller, tty = os.openpty()

        def take_terminal() -> None:  # after setsid: the pty becomes the controlling tty
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        process = subprocess.Popen([*LAUNCHER, *args], cwd=REPO_ROOT, stdin=tty, stdout=tty,
                                   stderr=tty, start_new_session=True,
                                   preexec_fn=take_terminal)  # noqa: PLW1509
        os.close(tty)
        reader = controller
    else:
        read_end, write_end = os.pipe()
        process = subprocess.Popen([*LAUNCHER, *args], cwd=REPO_ROOT,
                                   stdin=subprocess.DEVNULL, stdout=write_end,
                                   stderr=write_end, start_new_session=True)
        os.close(write_end)
        reader = read_end
    output = Output(reader)
    try:
        yield process, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        output.close()


def _child_group(output: Output) -> int:
    return int(output.wait_for(r"ready pid=\d+ pgid=(\d+)").group(1))


@pytest.mark.parametrize(("target", "signum"), [
    ("pid", signal.SIGTERM), ("pid", signal.SIGINT), ("pid", signal.SIGHUP),
    ("group", signal.SIGTERM), ("group", signal.SIGINT)])
def test_a_signal_to_the_launcher_reaches_the_task_once(target: str, signum: int) -> None:
    with launched(terminal=False) as (process, output):
        group = _child_group(output)
        assert group not in (process.pid, os.getpgrp())  # a process group of its own
        if target == "pid":
            os.kill(process.pid, signum)
        else:
            os.killpg(process.pid, signum)
        assert _signals(output) == [signal.Signals(signum).name]
        assert process.wait(10) == 7  # the task's exit code


def test_ctrl_c_on_a_terminal_reaches_the_task_once_and_it_reads_the_terminal() -> None:
    with launched(terminal=True, args=("--read",)) as (process, output):
        # The task's group owns the terminal: reading it does not stop it (SIGTTIN)...
        output.wait_for(r"foreground=True")
        os.write(output.fd, b"hello\n")
        output.wait_for(r"read hello")
        # ... and the terminal's Ctrl-C (SIGINT to the foreground group) reaches it once.
        os.write(output.fd, b"\x03")
        assert _signals(output) == ["SIGINT"]
        assert process.wait(10) == 7


def test_ctrl_z_stops_the_launcher_too_and_fg_continues_the_task() -> None:
    with launched(terminal=True, args=("--read",)) as (process, output):
        output.wait_for(r"foreground=True")
        os.write(output.fd, b"\x1a")  # Ctrl-Z: SIGTSTP to the task's group
        # The launcher stops itself, so a shell sees its job stopped.
        wait_for(lambda: _state(process.pid) == "T", timeout=10,
                 message="the launcher to stop")
        os.kill(process.pid, signal.SIGCONT)  # what `fg` sends to the job
        # The launcher hands the terminal back to the task's group before continuing it.
        os.write(output.fd, b"again\n")
        output.wait_for(r"read again")
        os.write(output.fd, b"\x03")
        assert _signals(output) == ["SIGINT"]
        assert process.wait(10) == 7


def _signals(output: Output) -> list[str]:
    """The signals the task says it received (it says so once, after a 0.5 s window)."""
    return output.wait_for(r"signals ([A-Z ]+)\r?\n").group(1).split()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_a_closed_terminal_hangs_up_the_task_once(tmp_path: Path) -> None:
    """The launcher leads the session (as when a terminal or `ssh -t` runs ./taskw
    directly): the terminal's hang-up reaches only it, and it passes it on, once."""
    report = tmp_path / "signals"
    with launched(terminal=True, args=("--report", str(report))) as (process, output):
        output.wait_for(r"foreground=True\r?\n")  # the whole line, before the hang-up
        output.close()  # the terminal goes away: its hang-up
        assert process.wait(10) == 7
    assert report.read_text().split() == ["signals", "SIGHUP"]
