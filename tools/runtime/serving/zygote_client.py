"""The runtime's side of the zygote (zygote.py): start it, ask it for function processes
and hand each back as a ZygoteProcess that quacks like the subprocess.Popen the runtime
uses (pid, poll, wait, returncode, stdout). A forked function is the zygote's child, so its
exit status arrives as an "exited" message, read by one reader thread that also resolves
spawn answers; if the zygote dies, its children end (PR_SET_PDEATHSIG) and are reported as
-SIGTERM. Thread-safe: requests are serialised by a lock, answers matched by id."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from tools.runtime.serving import children
from tools.runtime.serving.zygote import MAX_MESSAGE, PRELOAD_FLAVOURS


class ZygoteError(RuntimeError):
    """The zygote could not be started or could not start a process."""


class ZygoteProcess:
    """A function process forked by the zygote, with the Popen methods the runtime uses.
    Its output pipe is `stdout`, or `stderr` when its stdout went to a file."""

    def __init__(self, client: ZygoteClient, pid: int, pipe: IO[bytes], *,
                 stdout_to_file: bool = False) -> None:
        self._client, self.pid = client, pid
        self.stdout: IO[bytes] | None = None if stdout_to_file else pipe
        self.stderr: IO[bytes] | None = pipe if stdout_to_file else None
        self.returncode: int | None = None
        self.args = f"zygote child {pid}"

    def poll(self) -> int | None:
        if self.returncode is None:
            self._client.check_orphan(self)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            self._client.wait_for_change(min(remaining or 0.1, 0.1))
        assert self.returncode is not None
        return self.returncode


class ZygoteClient:
    def __init__(self, cwd: Path, env: Mapping[str, str], *, flavour: str = "asgi",
                 start_timeout: float = 60.0,
                 output: Callable[[str], None] | None = None) -> None:
        if flavour not in PRELOAD_FLAVOURS:
            raise ValueError(f"unknown zygote flavour {flavour!r}")
        self.flavour = flavour
        # Wall clock before its imports begin: a source file changed after this may not be
        # in what it preloaded (compared with file modification times).
        self.loaded_at = time.time()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._socket = ours
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[int]] = {}
        self._children: dict[int, ZygoteProcess] = {}
        self._exits: dict[int, int] = {}  # exits that arrived before their spawn answer
        self._ready: Future[int] = Future()
        self._closed = False
        self._on_output = output or (lambda line: print(line, flush=True))
        child_env = {**env, "PYTHONUNBUFFERED": "1"}
        self._process = children.spawn(
            [sys.executable, "-m", "tools.runtime.serving.zygote", str(theirs.fileno()),
             flavour], cwd=cwd, env=child_env, pass_fds=(theirs.fileno(),))
        theirs.close()
        self._output = threading.Thread(target=self._forward_output, name="zygote-output",
                                        daemon=True)
        self._output.start()
        self._reader = threading.Thread(target=self._read, name="zygote-reader", daemon=True)
        self._reader.start()
        try:
            self.pid = self._ready.result(start_timeout)
        except Exception as exc:
            self.close()
            raise ZygoteError(f"the zygote did not start: {exc!r}") from exc

    def spawn(self, args: list[str], *, cwd: Path, env: Mapping[str, str],
              timeout: float = 10.0, stdout: int | None = None) -> ZygoteProcess:
        """Fork a child that runs functions-framework with `args` (its arguments); its
        stdout goes to the file descriptor `stdout` if given (stderr to the pipe)."""
        children.wait_if_refused()
        read_end, write_end = os.pipe()
        request_id = next(self._ids)
        answer: Future[int] = Future()
        try:
            with self._lock:
                if self._closed:
                    raise ZygoteError("the zygote is closed")
                self._pending[request_id] = answer
                request = {"op": "spawn", "id": request_id, "argv": args, "cwd": str(cwd),
                           "env": dict(env)}
                output = [write_end] if stdout is None else [stdout, write_end]
                socket.send_fds(self._socket, [json.dumps(request).encode()], output)
            pid = answer.result(timeout)
        except Exception as exc:
            os.close(read_end)
            raise ZygoteError(f"the zygote could not start the process: {exc!r}") from exc
        finally:
            os.close(write_end)
            self._pending.pop(request_id, None)
        child = ZygoteProcess(self, pid, os.fdopen(read_end, "rb"),
                              stdout_to_file=stdout is not None)
        with self._changed:
            self._children[pid] = child
            if pid in self._exits:
                child.returncode = self._exits.pop(pid)
        return child

    def has_children(self) -> bool:
        """Some process it started has not exited yet."""
        with self._changed:
            return any(child.poll() is None for child in list(self._children.values()))

    def wait_for_change(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def check_orphan(self, child: ZygoteProcess) -> None:
        """After the zygote died nobody reports exits: a pid that is gone has exited."""
        if self._reader.is_alive():
            return
        try:
            os.kill(child.pid, 0)
        except ProcessLookupError:
            with self._changed:
                child.returncode = -signal.SIGTERM
                self._changed.notify_all()
        except PermissionError:
            pass

    def close(self) -> None:
        """Stop the zygote (its children, if any are left, get SIGTERM)."""
        with self._lock:
            self._closed = True
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        children.terminate(self._process, 5.0)
        self._reader.join(5)
        self._socket.close()

    def _read(self) -> None:
        try:
            while True:
                message = self._socket.recv(MAX_MESSAGE)
                if not message:
                    break
                self._dispatch(json.loads(message))
        except OSError:
            pass
        finally:
            error = ZygoteError("the zygote exited")
            for future in [self._ready, *self._pending.values()]:
                if not future.done():
                    future.set_exception(error)
            with self._changed:
                self._changed.notify_all()

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready":
            self._ready.set_result(int(message["pid"]))
        elif op in ("spawned", "error"):
            future = self._pending.get(int(message.get("id") or 0))
            if future is not None and not future.done():
                if op == "spawned":
                    future.set_result(int(message["pid"]))
                else:
                    future.set_exception(ZygoteError(str(message.get("error"))))
        elif op == "exited":
            with self._changed:
                pid, code = int(message["pid"]), int(message["code"])
                child = self._children.pop(pid, None)
                if child is None:
                    self._exits[pid] = code
                else:
                    child.returncode = code
                self._changed.notify_all()

    def _forward_output(self) -> None:
        # The zygote's own lines (not its children's): rare, but worth seeing.
        stdout = self._process.stdout
        if stdout is None:
            return
        with stdout:
            for raw in iter(stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                self._on_output(f"zygote ({self.flavour}): {line}")
