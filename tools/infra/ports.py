"""Operating-system helpers shared by the embedded servers: loopback TCP ports, server
logs, stopping a process tree, and running a child as an unprivileged account.

`free_port` asks the kernel for an unused port. Another process can still take it before
our server binds it, so callers that picked the port themselves retry with a new one when
the server reports the address in use (ChildServer.start).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port on `host` that nothing listens on right now (chosen by the kernel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when a new listener could bind `host:port` (so no server holds it any more).

    SO_REUSEADDR makes sockets of a closed server lingering in TIME_WAIT not count: they
    would not stop a restarted server from binding either.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def accepts_connections(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True when something accepts a TCP connection on `host:port`."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def log_size(path: Path) -> int:
    """Current size of a log file (0 if missing): where the next run's lines will start."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def log_tail(path: Path, *, start: int = 0, lines: int = 30) -> str:
    """The last `lines` lines of `path` written after byte `start`, for error messages."""
    try:
        with path.open("rb") as log:
            log.seek(start)
            text = log.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of {path} ---\n{tail}" if tail else f"(log {path} is empty)"


def stop_process(pid: int, steps: Sequence[tuple[signal.Signals, float]], *,
                 what: str = "process", warn: bool = True) -> None:
    """Stop `pid` politely, then firmly: send each (signal, grace seconds) of `steps` in
    turn until it exits; if it outlives them all, SIGKILL it and every descendant.

    Descendants are killed explicitly because a process group is not enough: PostgreSQL
    puts each backend in its own session (so the postmaster can signal their groups).
    Waiting reaps `pid` when it is our child. `warn=False` where outliving the grace is
    expected (nothing to flush), so a normal stop prints no warning.
    """
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for sig, grace in steps:
        try:
            proc.send_signal(sig)
            proc.wait(grace)
            return
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            if warn:
                logger.warning("%s (pid %d) still running %.1fs after %s", what, pid,
                               grace, sig.name)
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    _, alive = psutil.wait_procs(family, timeout=5)
    if alive:
        raise RuntimeError(f"{what}: could not kill pids {[p.pid for p in alive]}")


def process_tag() -> str:
    """"pid:start time" of this process: names it unambiguously even after pid reuse."""
    me = psutil.Process()
    return f"{me.pid}:{me.create_time()}"


def tag_is_alive(tag: str) -> bool:
    """Whether the process named by a `process_tag()` still runs."""
    try:
        pid, created = tag.split(":")
        return abs(psutil.Process(int(pid)).create_time() - float(created)) < 0.01
    except (ValueError, psutil.Error):
        return False


# --- running a child as an unprivileged account (PostgreSQL refuses to run as root) -----

def unprivileged_account(name: str) -> pwd.struct_passwd | None:
    """The system account `name` (created if missing) when we are root, else None: run as
    ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise RuntimeError(f"running as root needs an unprivileged account: create user "
                           f"{name!r} (useradd is not available here)")
    # check=False: a concurrent start may have created it first; getpwnam decides.
    subprocess.run([useradd, "--system", "--user-group", "--no-create-home", "--shell",
                    "/usr/sbin/nologin", name], check=False, capture_output=True)
    return pwd.getpwnam(name)


def run_as(account: pwd.struct_passwd | None) -> dict[str, Any]:
    """Popen arguments that drop root to `account` (uid, gid, no supplementary groups)."""
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def allow_traverse(path: Path) -> None:
    """o+x on every parent of `path`: others may pass through (not list) them, e.g.
    pytest's private /tmp/pytest-of-root or a checkout under /root."""
    for parent in path.parents:
        _add_mode(parent, stat.S_IXOTH)


def give_tree(path: Path, account: pwd.struct_passwd) -> None:
    """chown -R `path` to `account` unless it already owns it."""
    if path.stat().st_uid != account.pw_uid:
        for member in [path, *path.rglob("*")]:
            os.chown(member, account.pw_uid, account.pw_gid, follow_symlinks=False)


@cache
def make_tree_readable(root: Path) -> None:
    """o+r on files, o+rx on directories and executables under `root` (once per process):
    a wheel's files keep their archive modes, which may be owner-only."""
    allow_traverse(root)
    _add_mode(root, stat.S_IROTH | stat.S_IXOTH)
    for path in root.rglob("*"):
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode) or (stat.S_ISREG(mode) and mode & stat.S_IXUSR):
            _add_mode(path, stat.S_IROTH | stat.S_IXOTH)
        elif stat.S_ISREG(mode):
            _add_mode(path, stat.S_IROTH)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(stat.S_IMODE(mode) | bits)
