"""What a function's container runs (`python -m common.serving`, the Dockerfile's CMD; the
local runtime runs the same): functions-framework's options and environment (--target/
FUNCTION_TARGET, --source/FUNCTION_SOURCE, --signature-type/FUNCTION_SIGNATURE_TYPE,
--host/HOST, --port/PORT, --asgi/FUNCTION_USE_ASGI). An ASGI function is served by uvicorn
in this one process (no gunicorn master: docs/benchmarks.md, "One process per function");
the api (Flask, WSGI) by functions-framework's gunicorn, whose forked worker warms up the
main module's resources as it starts. SIGTERM drains in-flight requests within GRACEFUL_S.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from common.settings_errors import SettingsError

_TRUE = {"1", "true", "t", "yes", "y", "on"}  # click's words for a true flag
# As gunicorn's graceful_timeout, which the api stops within.
GRACEFUL_S = 30


def parse(argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    """functions-framework's options; each falls back to its environment variable."""
    parser = argparse.ArgumentParser(prog="common.serving")
    parser.add_argument("--target", default=env.get("FUNCTION_TARGET"))
    parser.add_argument("--source", default=env.get("FUNCTION_SOURCE"))
    parser.add_argument("--signature-type", default=env.get("FUNCTION_SIGNATURE_TYPE", "http"),
                        choices=("http", "event", "cloudevent", "typed"))
    parser.add_argument("--host", default=env.get("HOST", "0.0.0.0"))  # noqa: S104 - a pod's port
    parser.add_argument("--port", type=int, default=int(env.get("PORT", "8080")))
    parser.add_argument("--asgi", action="store_true",
                        default=env.get("FUNCTION_USE_ASGI", "").strip().lower() in _TRUE)
    args = parser.parse_args(list(argv))
    if not args.target:
        parser.error("--target (or FUNCTION_TARGET) is required")
    return args


def one_process(argv: Sequence[str], env: Mapping[str, str] | None = None) -> bool:
    """True when this function is served in this very process (uvicorn, no fork)."""
    return bool(parse(argv, os.environ if env is None else env).asgi)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv, os.environ)
    try:
        return _serve(args, argv)
    except SettingsError as exc:  # read when the function's module loads: one line, no trace
        print(f"{args.target}: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if not args.asgi:
        from functions_framework._cli import _cli

        master = os.getpid()
        os.register_at_fork(after_in_child=lambda: _start_in_worker(master))
        _cli.main(args=argv, prog_name="functions-framework", standalone_mode=True)
        return 0
    import uvicorn

    from common.serving.asgi_app import create_app
    from common.serving.uvicorn_server import QuietServer

    app = create_app(args.target, args.source, args.signature_type)
    # As under gunicorn's "error" log level: uvicorn's notices stay out of the function's
    # ECS lines (its warnings and errors go there, through the root logger); no access log.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    config = uvicorn.Config(app, host=args.host, port=args.port, loop="uvloop",
                            http="httptools", log_config=None, access_log=False,
                            timeout_graceful_shutdown=GRACEFUL_S)
    try:
        QuietServer(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it drained on: a stop asked for
        return 0
    return 0


def _start_in_worker(master: int) -> None:
    """In each worker gunicorn forks (also one it starts again after a crash; never in the
    master, where a connection would be inherited, nor in a grandchild): start the main
    module's resources, and close them when the worker exits."""
    if os.getppid() != master:
        return
    from common.serving.asgi_app import resources_of

    resources = resources_of(sys.modules.get("main"))  # functions-framework's module name
    if resources is not None:
        resources.start()
        atexit.register(resources.close)
