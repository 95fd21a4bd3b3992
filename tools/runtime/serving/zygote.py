"""The local runtime's fork server (a "zygote"): it imports the libraries once, and each
function process is a fork() of it that imports only its own main.py and runs
entrypoint.serve. One per flavour of serving (argv[2]: "asgi" for the CloudEvents
functions, "wsgi" for the api: PRELOAD_FLAVOURS). It imports libraries only: no function
code, settings, connection or thread (fork() copies only the calling thread). Over the
SOCK_SEQPACKET fd argv[1], one JSON object a message: {"op": "spawn", "id", "argv", "env",
"cwd"} with one or two output fds -> {"op": "spawned", "id", "pid"} or {"op": "error", "id",
"error"}, later {"op": "exited", "pid", "code"}. It ends with the runtime; so do its children."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

# What every function imports; a missing optional one is skipped, not fatal. Only what a
# function imports: a forked child holds every module its zygote imported (confluent_kafka's
# admin client, which no function uses, and SQLAlchemy, which only the tools use, would be
# in every child's RSS).
PRELOAD_COMMON = (
    "functions_framework", "functions_framework._cli", "flask", "werkzeug", "click",
    "cloudevents.http", "cloudevents.kafka", "pydantic", "pydantic_settings",
    "psycopg", "psycopg_pool", "confluent_kafka", "ecs_logging",
    "common.settings", "common.logging", "common.pg", "common.kafka", "common.outbox",
    "common.events.catalogue", "common.cloudevents_kafka",
    "common.problems", "common.tracing", "common.order_state", "common.resources",
    "common.serving.serve",
    "tools.runtime.serving.entrypoint",
)
# What only one way of serving needs. A zygote serves one flavour, so a function does not
# carry the other's libraries: measured, an event function's worker held 5 MB of JWT and
# cryptography it never calls, the api's 3 MB of uvicorn, Starlette and anyio.
PRELOAD_FLAVOURS: dict[str, tuple[str, ...]] = {
    # CloudEvents functions (FUNCTION_USE_ASGI: common/serving/event_server.py), on uvicorn in one
    # process (common/serving/serve.py).
    "asgi": (
        "functions_framework.aio", "uvicorn", "uvicorn.server",
        "uvicorn.protocols.http.httptools_impl", "uvicorn.loops.uvloop", "uvloop",
        "httptools", "starlette", "anyio", "common.serving.event_server", "common.step",
        "common.bootstrap", "common.serving.asgi_app", "common.serving.uvicorn_server",
    ),
    # Flask on gunicorn's thread worker: the api.
    "wsgi": ("functions_framework._http.gunicorn", "gunicorn.arbiter",
             "gunicorn.workers.gthread", "jwt", "common.auth", "common.serving.wsgi"),
}
# Click's words for a true flag, as functions-framework reads FUNCTION_USE_ASGI.
_TRUE = {"1", "true", "t", "yes", "y", "on"}


def flavour_of(env: Mapping[str, str]) -> str:
    """The zygote a function with this environment forks from."""
    return "asgi" if env.get("FUNCTION_USE_ASGI", "").strip().lower() in _TRUE else "wsgi"


MAX_MESSAGE = 1 << 20
_PR_SET_PDEATHSIG = 1


def preload(flavour: str) -> list[str]:
    """Import what a function of `flavour` needs; the names that failed (logged by the
    caller, not fatal)."""
    failed = []
    for name in (*PRELOAD_COMMON, *PRELOAD_FLAVOURS[flavour]):
        try:
            importlib.import_module(name)
        except Exception:  # an optional extra is missing: the child imports what it needs
            failed.append(name)
    return failed


def serve(control: socket.socket) -> None:
    """Answer spawn requests until the runtime closes `control`."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd fires
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    while True:
        try:
            readable, _, _ = select.select([control, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)
            _reap(control)
        if control in readable:
            message, fds, _flags, _addr = socket.recv_fds(control, MAX_MESSAGE, 2)
            if not message:
                return  # the runtime is gone
            _handle(control, json.loads(message), fds, (wake_r, wake_w))


def _handle(control: socket.socket, request: dict[str, Any], fds: list[int],
            own_fds: tuple[int, int]) -> None:
    if request.get("op") != "spawn" or len(fds) not in (1, 2):
        for fd in fds:
            os.close(fd)
        _send(control, {"op": "error", "id": request.get("id"), "error": "bad request"})
        return
    zygote = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            _become_child(control, fds, own_fds, zygote, request)
            from tools.runtime.serving.entrypoint import serve

            code = serve(list(request["argv"]))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # say why before dying: the runtime shows the output
            print(f"zygote child failed: {exc!r}", file=sys.stderr, flush=True)
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    _send(control, {"op": "spawned", "id": request["id"], "pid": pid})


def _become_child(control: socket.socket, output: list[int], own_fds: tuple[int, int],
                  zygote: int, request: dict[str, Any]) -> None:
    """Turn the fresh fork into what spawn.spawn() would have started."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    control.close()
    for fd in own_fds:
        os.close(fd)
    os.setpgid(0, 0)  # its own process group, like spawn(process_group=0)
    _die_with(zygote)
    os.dup2(output[0], 1)
    os.dup2(output[-1], 2)
    for fd in output:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # `python -m functions_framework` puts the working directory first on sys.path.
    sys.path[0] = request["cwd"]


def _die_with(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the zygote died before prctl took effect
        os._exit(1)


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _send(control, {"op": "exited", "pid": pid, "code": code})


def _send(control: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the runtime is gone: serve() ends on EOF
        control.sendmsg([json.dumps(message).encode()])


def main(argv: list[str]) -> int:
    from tools.runtime.proctitle import set_title

    set_title(f"zygote {argv[2]}")
    control = socket.socket(fileno=int(argv[1]))
    failed = preload(argv[2])
    if failed:
        print(f"not preloaded (each function imports them itself): {failed}",
              flush=True)
    # What the imports made lives as long as every child: out of the collector's sight,
    # a child's collections do not walk (nor write to, so copy) these objects again.
    gc.collect()
    gc.freeze()
    _send(control, {"op": "ready", "pid": os.getpid()})
    serve(control)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
