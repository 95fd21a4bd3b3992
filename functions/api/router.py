"""The router: serves the route specs declared with functions.api.route_specs (the same
specs generate the OpenAPI document) on werkzeug.routing.Map.

Per request: match (404/405 problems) -> authenticate -> size-limit, parse and validate
the body, query and declared headers (413/415/400/422 problems naming the field) -> call
the handler -> serialize its pydantic model. One ECS line is logged per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from werkzeug import Request, Response
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from common.logging import log_event
from common.problems import Problem, fault
from common.serving.wsgi import problem_response
from common.tracing import TraceContext, continue_or_start
from functions.api.openapi import build_document
from functions.api.parsing import read_json_body, validate_headers, validate_model
from functions.api.resources import ApiResources
from functions.api.route_specs import Call, Reply, Result, Route, RouteGroup
from functions.api.security import authenticate, require_admin

log = logging.getLogger("saga.api")

class Router:
    def __init__(
        self,
        groups: Sequence[RouteGroup],
        *,
        max_body_bytes: int = 64 * 1024,
    ) -> None:
        self.routes = [route for group in groups for route in group.routes]
        self.max_body_bytes = max_body_bytes
        self._document: dict[str, Any] = {}
        self._document_lock = threading.Lock()
        # strict_slashes=False: "/orders/" is "/orders", never a redirect to follow.
        self.map = Map(
            [Rule(r.path, endpoint=i, methods=[r.method]) for i, r in enumerate(self.routes)],
            strict_slashes=False,
        )

    def document(self, title: str) -> dict[str, Any]:
        """The OpenAPI document of these routes, built on first use (they never change)."""
        with self._document_lock:
            if not self._document:
                self._document.update(build_document(self.routes, title=title))
            return self._document

    def dispatch(self, request: Request, resources: ApiResources) -> Response:
        started = time.perf_counter_ns()
        trace = continue_or_start(request.headers.get("traceparent"))
        call: Call | None = None
        try:
            route, call = self._match(request, resources, trace)
            response = self._run(route, call)
        except Problem as problem:
            response = problem_response(problem)
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

    def _match(self, request: Request, resources: ApiResources, trace: TraceContext
               ) -> tuple[Route, Call]:
        adapter = self.map.bind_to_environ(request.environ)
        try:
            index, params = adapter.match()
        except NotFound:
            raise Problem(404, "not found", f"no route for {request.path}") from None
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            raise Problem(
                405, "method not allowed", f"{request.method} is not allowed here; use {allowed}",
                headers={"Allow": allowed},
            ) from None
        route = self.routes[index]
        return route, Call(request, resources, trace, params)

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
    problem = fault(exc, "internal error",
                    # A lost connection or a conflict that outlived the local retries.
                    transient_detail="the database is busy or unreachable; retry",
                    failed_detail="the request failed; it was logged",
                    headers={"Retry-After": "1"})
    if problem.retried:
        return problem_response(problem)
    if isinstance(exc, ValidationError):  # a handler built an invalid model: our bug
        log.error("response validation failed: %s", exc.errors()[:1])
    else:
        log.exception("unhandled error")
    return problem_response(problem)
