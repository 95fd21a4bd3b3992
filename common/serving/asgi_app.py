"""The ASGI app serve.py runs for a function served over ASGI (FUNCTION_USE_ASGI): the
function's `@aio.http` coroutine (FUNCTION_TARGET in FUNCTION_SOURCE, loaded as
functions-framework's create_asgi_app loads it) as the app itself, without the Starlette
router and middlewares create_asgi_app wraps it in (our endpoint routes by itself:
event_server.py). Its lifespan starts the module's `resources` (the warm-up) and closes
them at shutdown. Anything else (another signature, a synchronous function) still gets
create_asgi_app's app."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from common.resources import Resources

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
        return thin_app(function, resources_of(module))
    # create_asgi_app loads the module again: only for a function that is none of ours.
    app: ASGIApp = create_asgi_app(target, source, signature_type)  # type: ignore[no-untyped-call]
    return app


def resources_of(module: ModuleType | None) -> Resources | None:
    """The process's resources, as a function's main.py names them: `resources`."""
    found = getattr(module, "resources", None)
    return found if isinstance(found, Resources) else None


def thin_app(function: Function, resources: Resources | None = None) -> ASGIApp:
    """Every HTTP request to `function`; a lifespan starts and closes `resources`, other
    scopes are refused."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, resources)
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


async def _lifespan(receive: Receive, send: Send, resources: Resources | None) -> None:
    while True:
        message: dict[str, Any] = dict(await receive())
        if message["type"] == "lifespan.startup":
            if resources is not None:
                resources.start()  # in the background: serving starts at once
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if resources is not None:
                resources.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
