"""The router: serves the route specs declared with functions.api.route_specs (the same
specs generate the OpenAPI document) on werkzeug.routing.Map.

Per request: match (404/405 problems) -> authenticate -> size-limit, parse and validate
the body, query and declared headers (413/415/400/422 problems naming the field) -> call
the handler -> serialize its pydantic model. One ECS line is logged per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from pydantic import ValidationError
from werkzeug import Request, Response
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from common.db import is_transient
from common.logging import log_event
from common.problems import Problem
from common.settings import Settings, get_settings
from common.tracing import TraceContext, continue_or_start
from functions.api.errors import ApiProblem
from functions.api.parsing import read_json_body, validate_headers, validate_model
from functions.api.route_specs import Call, Reply, Result, Route, RouteGroup
from functions.api.security import authenticate, require_admin

log = logging.getLogger("saga.api")

class Router:
    def __init__(
        self,
        groups: Sequence[RouteGroup],
        *,
        max_body_bytes: int = 64 * 1024,
        settings: Callable[[], Settings] = get_settings,
    ) -> None:
        self.routes = [route for group in groups for route in group.routes]
        self.max_body_bytes = max_body_bytes
        self._settings = settings
        # strict_slashes=False: "/orders/" is "/orders", never a redirect to follow.
        self.map = Map(
            [Rule(r.path, endpoint=i, methods=[r.method]) for i, r in enumerate(self.routes)],
            strict_slashes=False,
        )

    def dispatch(self, request: Request) -> Response:
        started = time.perf_counter_ns()
        trace = continue_or_start(request.headers.get("traceparent"))
        call: Call | None = None
        try:
            route, call = self._match(request, trace)
            response = self._run(route, call)
        except Problem as problem:
            response = problem.get_response()
        except Exception as exc:
            response = _unexpected(exc)
        _finish(response)
        status = response.status_code
        log_event(
            log, f"{request.method} {request.path} {status}",
            action="http.request", outcome="success" if status < 400 else "failure",
            level=logging.WARNING if status >= 500 else logging.INFO,
            fields={
                "http.request.method": request.method,
                "url.path": request.path,
                "http.response.status_code": status,
                "event.duration": time.perf_counter_ns() - started,
                "user.id": call.principal.subject if call and call.principal else None,
                "trace.id": trace.trace_id,
                "span.id": trace.span_id,
                "labels.order_id": str(call.order_id) if call and call.order_id else None,
                "span.links": _span_links(call.links) if call and call.links else None,
            },
        )
        return response

    def _match(self, request: Request, trace: TraceContext) -> tuple[Route, Call]:
        adapter = self.map.bind_to_environ(request.environ)
        try:
            index, params = adapter.match()
        except NotFound:
            raise ApiProblem(404, "not found", f"no route for {request.path}") from None
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            raise ApiProblem(
                405, "method not allowed", f"{request.method} is not allowed here; use {allowed}",
                headers={"Allow": allowed},
            ) from None
        route = self.routes[index]
        return route, Call(request, self._settings(), trace, params)

    def _run(self, route: Route, call: Call) -> Response:
        request = call.request
        if route.auth != "none":
            call.principal = authenticate(request, call.settings)
            if route.auth == "admin":
                require_admin(call.principal)
        call.headers = validate_headers(request, route.headers)
        if route.query is not None:
            call.parsed_query = validate_model(route.query, dict(request.args), prefix="")
        if route.body is not None:
            payload = read_json_body(request, self.max_body_bytes)
            call.parsed_body = validate_model(route.body, payload, prefix="")
        return _to_response(route, route.handler(call))


def _span_links(links: Sequence[TraceContext]) -> list[dict[str, dict[str, str]]]:
    """OpenTelemetry span links as Elastic APM stores them (span.links: a list of trace.id
    and span.id), so Kibana finds a linked trace by span.links.trace.id."""
    return [{"trace": {"id": link.trace_id}, "span": {"id": link.span_id}} for link in links]


def _to_response(route: Route, result: Result) -> Response:
    if isinstance(result, Response):
        return result
    reply = result if isinstance(result, Reply) else Reply(result)
    body = reply.body.model_dump_json() if reply.body is not None else ""
    response = Response(
        body, status=reply.status or route.status,
        content_type="application/json" if reply.body is not None else None,
    )
    response.headers.update(reply.headers)
    return response


def _finish(response: Response) -> None:
    # API answers are per caller (tokens, balances): no shared cache may keep them.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def _unexpected(exc: Exception) -> Response:
    if is_transient(exc):
        # A lost connection or a serialization conflict that outlived the local retries.
        return ApiProblem(
            503, "temporarily unavailable", "the database is busy or unreachable; retry",
            headers={"Retry-After": "1"},
        ).get_response()
    if isinstance(exc, ValidationError):  # a handler built an invalid model: our bug
        log.error("response validation failed: %s", exc.errors()[:1])
    else:
        log.exception("unhandled error")
    return ApiProblem(500, "internal error", "the request failed; it was logged").get_response()
