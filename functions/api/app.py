"""Assembles the API: every resource module's routes, plus /healthz and /openapi.json.
Building the router connects to nothing; the database is first touched by a request."""

from __future__ import annotations

import json

from pydantic import BaseModel
from werkzeug import Response

from common.problems import Problem
from functions.api import accounts, auth, notifications, orders, pages, products
from functions.api.route_specs import Call, RouteGroup
from functions.api.router import Router

TITLE = "Order saga API"

meta = RouteGroup("meta")


class Health(BaseModel):
    status: str = "ok"


@meta.route("GET", "/healthz", summary="Liveness and database reachability", auth="none",
            response=Health, errors=(503,))
def healthz(call: Call) -> Health:
    try:
        call.resources.ping()
    except Exception as exc:  # unreachable, misconfigured or out of connections: not ready
        raise Problem(503, "database unavailable", type(exc).__name__,
                         headers={"Retry-After": "1"}) from None
    return Health()


@meta.route("GET", "/openapi.json", summary="This OpenAPI 3.1 document", auth="none")
def openapi_document(call: Call) -> Response:
    response = Response(json.dumps(ROUTER.document(TITLE)), content_type="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


ROUTER = Router([
    meta, auth.ROUTES, orders.ROUTES, accounts.ROUTES, products.ROUTES,
    notifications.ROUTES, pages.ROUTES,
])
