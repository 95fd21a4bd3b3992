"""What a function's container runs (`python -m common.serve`, the Dockerfile's CMD; the
local runtime runs the same through tools/runtime/launch.py): functions-framework's own
options and environment (--target/FUNCTION_TARGET, --source/FUNCTION_SOURCE,
--signature-type/FUNCTION_SIGNATURE_TYPE, --host/HOST, --port/PORT, --asgi/FUNCTION_USE_ASGI),
served in one process.

Why not functions-framework's CLI for every function: for an ASGI function it runs
gunicorn, whose master forks one uvicorn worker, so every pod held two processes where one
serves: the master's memory (62 MB RSS each, measured in docs/benchmarks.md) and its
heartbeat wake-ups, for nothing a pod needs. With one worker and no worker timeout
(functions-framework sets timeout 0), the master only restarts a worker that died, and
Kubernetes restarts a container whose process died. So the CloudEvents functions (every
one but the api: common/event_server.py) run uvicorn right here, with what the worker
used (httptools, uvloop); SIGTERM drains in-flight requests as gunicorn did. The app is
common/asgi_app.py's: the function itself, without the Starlette router and middlewares
functions-framework's create_asgi_app wraps it in. The api (Flask, WSGI) keeps
functions-framework's server: gunicorn's thread worker.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from common.settings_errors import SettingsError

_TRUE = {"1", "true", "t", "yes", "y", "on"}  # click's words for a true flag
# gunicorn's graceful_timeout, which the ASGI functions used to stop within.
GRACEFUL_S = 30


def parse(argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    """functions-framework's options; each falls back to its environment variable."""
    parser = argparse.ArgumentParser(prog="common.serve")
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

        _cli.main(args=argv, prog_name="functions-framework", standalone_mode=True)
        return 0
    import uvicorn

    from common.asgi_app import create_app
    from common.uvicorn_server import QuietServer

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


if __name__ == "__main__":
    sys.exit(main())
