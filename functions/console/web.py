"""The console's HTTP layer: routes declared once (method, path, models, errors) are served
here and documented by openapi.py, so the two cannot drift apart.

Per request: match (404/405) -> authenticate (every API route: a Bearer token with the
admin role; 401 without one, 403 for any other role; the page and its files are public,
but a token sent to them is checked too, so a customer's token gets 403 on every console
URL) -> validate the query and body (422 naming the field) -> the handler -> JSON. Every
error is RFC 9457 problem+json; one ECS line is logged per request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from werkzeug import Request, Response
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from common.auth import AuthError, Principal, verify_token
from common.logging import log_event
from common.settings import Settings
from common.tracing import TraceContext, continue_or_start
from functions.console.wiring import ConsoleResources, Problem, fault, problem_response

log = logging.getLogger("saga.console")
M = TypeVar("M", bound=BaseModel)
MAX_BODY = 64 * 1024
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="saga-console"'}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # werkzeug rule syntax: /console/api/orders/<uuid:order_id>
    handler: Callable[[Call], BaseModel | Response]
    summary: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    public: bool = False  # the page, its files and the OpenAPI document
    produces: str = "application/json"
    hidden: bool = False  # served, but not an operation of the API (static files)


@dataclass
class Call:
    request: Request
    resources: ConsoleResources
    trace: TraceContext
    params: Mapping[str, Any]
    principal: Principal | None = None
    parsed_query: BaseModel | None = None
    parsed_body: BaseModel | None = None
    order_id: str | None = None  # what the request acted on, for its log line

    @property
    def settings(self) -> Settings:
        return self.resources.settings

    def query(self, model: type[M]) -> M:
        if not isinstance(self.parsed_query, model):
            raise TypeError(f"route declares no {model.__name__} query")
        return self.parsed_query

    def body(self, model: type[M]) -> M:
        if not isinstance(self.parsed_body, model):
            raise TypeError(f"route declares no {model.__name__} body")
        return self.parsed_body

    @property
    def operator(self) -> str:
        """The token's subject: who the audit names."""
        if self.principal is None:
            raise TypeError("route is not authenticated")
        return self.principal.subject


class Routes:
    """The routes of the console, declared with the `route` decorator."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, path: str, *, summary: str, **spec: Any
              ) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
        def register(handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
            self.routes.append(Route(method, path, handler, summary, **spec))
            return handler
        return register


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self.map = Map([Rule(r.path, endpoint=i, methods=[r.method])
                        for i, r in enumerate(self.routes)], strict_slashes=False)

    def dispatch(self, request: Request, resources: ConsoleResources) -> Response:
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
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        status = response.status_code
        log_event(log, f"{request.method} {request.path} {status}", action="http.request",
                  outcome="success" if status < 400 else "failure",
                  level=logging.WARNING if status >= 500 else logging.INFO, fields={
                      "http.request.method": request.method, "url.path": request.path,
                      "http.response.status_code": status,
                      "event.duration": time.perf_counter_ns() - started,
                      "user.id": call.principal.subject if call and call.principal else None,
                      "trace.id": trace.trace_id, "span.id": trace.span_id,
                      "labels.order_id": call.order_id if call else None})
        return response

    def _match(self, request: Request, resources: ConsoleResources, trace: TraceContext
               ) -> tuple[Route, Call]:
        adapter = self.map.bind_to_environ(request.environ)
        try:
            index, params = adapter.match()
        except NotFound:
            raise Problem(404, "not found", f"no route for {request.path}") from None
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            raise Problem(405, "method not allowed",
                          f"{request.method} is not allowed here; use {allowed}",
                          headers={"Allow": allowed}) from None
        return self.routes[index], Call(request, resources, trace, params)

    def _run(self, route: Route, call: Call) -> Response:
        request = call.request
        if not route.public or request.headers.get("Authorization"):
            call.principal = authenticate(request, call.settings)
            if not call.principal.is_admin:
                raise Problem(403, "forbidden", "the console is for operators: this token "
                              "has no admin role")
        if route.query is not None:
            call.parsed_query = validate(route.query, dict(request.args))
        if route.body is not None:
            call.parsed_body = validate(route.body, _json_body(request))
        result = route.handler(call)
        if isinstance(result, Response):
            return result
        return Response(result.model_dump_json(), status=200, content_type="application/json")


def authenticate(request: Request, settings: Settings) -> Principal:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "unauthorized", "send Authorization: Bearer <token> of an admin "
                      "(locally: ./taskw token -- --customer you --admin)", headers=_CHALLENGE)
    try:
        return verify_token(settings, token.strip())
    except AuthError as exc:
        raise Problem(401, "unauthorized", str(exc), headers=_CHALLENGE) from None


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in err["loc"]) or "body",
                   "message": err["msg"].removeprefix("Value error, "), "type": err["type"]}
                  for err in exc.errors(include_url=False, include_input=False)]
        first = errors[0]
        raise Problem(422, "request validation failed", f"{first['field']}: "
                      f"{first['message']}", errors=errors) from None


def _json_body(request: Request) -> Any:
    if request.mimetype and request.mimetype != "application/json":
        raise Problem(415, "unsupported media type",
                      f"send application/json, not {request.mimetype}")
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise Problem(413, "request body too large", f"the limit is {MAX_BODY} bytes")
    try:
        return json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        raise Problem(400, "malformed JSON", f"body: {exc}") from None


def _unexpected(exc: Exception) -> Response:
    problem = fault(exc, "internal error",
                    transient_detail="the database is busy or unreachable; retry",
                    failed_detail="the request failed; it was logged",
                    headers={"Retry-After": "1"})
    if not problem.retried:
        log.exception("unhandled error")
    return problem_response(problem)
