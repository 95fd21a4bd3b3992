"""The console's OpenAPI 3.1 document, generated from its routes (never written by hand):
every operation tagged `console`, a bearer-JWT security scheme (an admin's token), and
problem+json for every error status, so each button of the page is also a `curl`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from functions.console.web import Route

TAG = "console"
REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_CONVERTERS = {"uuid": {"type": "string", "format": "uuid"}, "int": {"type": "integer"}}


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


def build_document(routes: Sequence[Route]) -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for route in routes:
        wanted += [(m, "validation") for m in (route.query, route.body) if m is not None]
        if route.response is not None:
            wanted.append((route.response, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    schemas: dict[str, Any] = defs.get("$defs", {})

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not route.hidden:
            path = _PARAM.sub(lambda m: "{" + m.group(2) + "}", route.path)
            paths.setdefault(path, {})[route.method.lower()] = _operation(route, ref, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Order saga operator console", "version": "1",
                 "description": "What the console page does, as an HTTP API for an admin's "
                 "token: overview, find, stuck orders, one order, dead letters, operations "
                 "(cancel, re-drive, resolve, bulk with a dry run) and their audit. Errors "
                 "are RFC 9457 problem+json."},
        "tags": [{"name": TAG, "description": "The operators' console"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "A token with the admin role."}}},
    }


def _operation(route: Route, ref: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": m.group(2), "in": "path", "required": True,
         "schema": _CONVERTERS.get(m.group(1) or "", {"type": "string"})}
        for m in _PARAM.finditer(route.path)]
    if route.query is not None:
        model = schemas[ref(route.query, "validation")["$ref"].rsplit("/", 1)[-1]]
        required = set(model.get("required", []))
        params += [{"name": name, "in": "query", "required": name in required,
                    "schema": schema} | ({"description": schema["description"]}
                                         if "description" in schema else {})
                   for name, schema in model.get("properties", {}).items()]
    success: dict[str, Any] = {"description": "OK"}
    if route.response is not None:
        success["content"] = {"application/json": {"schema": ref(route.response,
                                                                 "serialization")}}
    elif route.produces == "application/json":
        success["content"] = {route.produces: {"schema": {"type": "object"}}}
    else:
        success["content"] = {route.produces: {"schema": {"type": "string"}}}
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__, "summary": route.summary, "tags": [TAG],
        "responses": {"200": success}}
    if params:
        operation["parameters"] = params
    errors = set(route.errors) | {500}
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": ref(route.body, "validation")}}}
        errors |= {400, 413, 415, 422}
    if route.query is not None:
        errors.add(422)
    if not route.public:
        operation["security"] = [{"bearerAuth": []}]
        errors |= {401, 403}
    for status in sorted(errors):
        operation["responses"][str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/problem+json": {"schema": ref(Problem, "serialization")}}}
    return operation
