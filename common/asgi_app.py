"""The ASGI app common/serve.py runs for a function served over ASGI (FUNCTION_USE_ASGI).

A CloudEvents function's main.py keeps functions-framework's contract (an `@aio.http`
coroutine named by FUNCTION_TARGET in FUNCTION_SOURCE); its module is loaded the way
functions-framework's create_asgi_app loads it. What is dropped is the app create_asgi_app
wraps it in: Starlette's router (four routes, matched by regular expression), its error
middleware and functions-framework's two middlewares (an execution id added to every
request's headers, an exception handler). Our endpoint (common/event_server.py) does its
own routing (probes, 405, any POST path), so that layer only cost CPU: measured with
callgrind on one served event, 0.96 M instructions with it, 0.78 M without (docs/benchmarks.md,
"Serving without functions-framework's Starlette app"). Anything else (another signature
type, a synchronous function) still gets create_asgi_app's app.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("saga.server")

Function = Callable[[Request], Awaitable[Response]]


def create_app(target: str | None, source: str | None, signature_type: str | None) -> ASGIApp:
    """The function's ASGI app: thin for an async HTTP function, else functions-framework's."""
    from functions_framework import _function_registry
    from functions_framework.aio import create_asgi_app

    registry: Any = _function_registry  # untyped

    target = registry.get_function_target(target)
    source = registry.get_function_source(source)
    module, spec = registry.load_function_module(source)
    spec.loader.exec_module(module)
    function = registry.get_user_function(source, module, target)
    signature = registry.get_func_signature_type(target, signature_type)
    if signature == registry.HTTP_SIGNATURE_TYPE and inspect.iscoroutinefunction(function):
        return thin_app(function)
    # create_asgi_app loads the module again: only for a function that is none of ours.
    app: ASGIApp = create_asgi_app(target, source, signature_type)  # type: ignore[no-untyped-call]
    return app


def thin_app(function: Function) -> ASGIApp:
    """Every HTTP request to `function`; a lifespan is answered, other scopes refused."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # a websocket: nothing of ours speaks it
            raise RuntimeError(f"unsupported ASGI scope {scope['type']!r}")
        try:
            response = await function(Request(scope, receive))
        except Exception:  # a bug outside the endpoint's own 500 (event_server.py)
            log.exception("unhandled error on %s", scope.get("path", "/"))
            response = PlainTextResponse("Internal Server Error", status_code=500)
        await response(scope, receive, send)

    return app


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: say so (as Starlette did, with no handlers)."""
    while True:
        message: dict[str, Any] = dict(await receive())
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
