"""Route specs: what a resource module states once about each operation (method,
path, models, status, auth, errors, headers). The router (functions.api.router) serves
them and functions.api.openapi documents them, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel
from werkzeug import Request, Response

from common.auth import Principal
from common.settings import Settings
from common.tracing import TraceContext

if TYPE_CHECKING:
    from functions.api.resources import ApiResources

Auth = Literal["none", "customer", "admin"]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Header:
    """A request header a route reads, validated and documented like a field."""

    name: str
    description: str
    max_length: int = 200


@dataclass
class Reply:
    """A handler's answer when the route's default status or headers are not enough."""

    body: BaseModel | None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


Result = BaseModel | Reply | Response
Handler = Callable[["Call"], Result]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # werkzeug rule syntax: /orders/<uuid:order_id>
    handler: Handler
    summary: str
    tag: str
    auth: Auth
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    headers: tuple[Header, ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()  # (name, description) for the docs
    produces: str = "application/json"
    hidden: bool = False  # static asset files: served, but not API operations

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


@dataclass
class Call:
    """What a handler gets: the request and everything the router already checked."""

    request: Request
    resources: ApiResources
    trace: TraceContext
    params: Mapping[str, Any]
    principal: Principal | None = None
    headers: dict[str, str] = field(default_factory=dict)
    parsed_body: BaseModel | None = None
    parsed_query: BaseModel | None = None
    # What the handler acted on, for the request's log line (the router writes it).
    order_id: UUID | None = None
    links: list[TraceContext] = field(default_factory=list)

    def acts_on(self, order_id: UUID, order_trace: TraceContext | None = None) -> None:
        """This request changes (or creates) that order. A request is a trace of its own,
        so when `order_trace` (the order's own trace context) is another trace, this
        request's span links to it (docs/observability.md, "One order, its traces").
        Idempotent: a retried transaction calls it again."""
        self.order_id = order_id
        if (order_trace is not None and order_trace.trace_id != self.trace.trace_id
                and order_trace not in self.links):
            self.links.append(order_trace)

    @property
    def settings(self) -> Settings:
        return self.resources.settings

    def body(self, model: type[M]) -> M:
        """The validated body, typed as the model the route declared."""
        if not isinstance(self.parsed_body, model):
            raise TypeError(f"route declares no {model.__name__} body")
        return self.parsed_body

    def query(self, model: type[M]) -> M:
        if not isinstance(self.parsed_query, model):
            raise TypeError(f"route declares no {model.__name__} query")
        return self.parsed_query

    @property
    def user(self) -> Principal:
        if self.principal is None:
            raise TypeError("route is not authenticated")
        return self.principal

    @property
    def actor(self) -> str:
        """Who to name in an order's history: "customer:alice" or "admin:bob"."""
        return f"{'admin' if self.user.is_admin else 'customer'}:{self.user.subject}"


class RouteGroup:
    """The routes of one resource module, declared with the `route` decorator."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        auth: Auth,
        status: int = 200,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        errors: tuple[int, ...] = (),
        headers: tuple[Header, ...] = (),
        response_headers: tuple[tuple[str, str], ...] = (),
        produces: str = "application/json",
        hidden: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(
                method, path, handler, summary, self.tag, auth, status, body, query, response,
                errors, headers, response_headers, produces, hidden,
            ))
            return handler

        return register
