"""The OpenAPI 3.1 document, generated from the route declarations (never written by hand):
pydantic JSON Schemas (2020-12, which OpenAPI 3.1 uses as is) under components/schemas,
a bearer-JWT security scheme, and problem+json for every error status."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from http import HTTPStatus
from importlib import metadata
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from functions.api.route_specs import Route

REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY_SCHEME = "bearerAuth"
_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
RefFn = Callable[[type[BaseModel], JsonSchemaMode], dict[str, Any]]
_CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "uuid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer"},
}


class FieldError(BaseModel):
    field: str = Field(description='Dotted path of the field, e.g. "items.0.quantity".')
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="Validation failures, one per field."
    )


def openapi_path(rule: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(2) + "}", rule)


def build_document(routes: Sequence[Route], *, title: str) -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for route in routes:
        wanted += [(m, "validation") for m in (route.body, route.query) if m is not None]
        if route.response is not None:
            wanted.append((route.response, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = defs.get("$defs", {})

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.hidden:
            continue
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = _operation(
            route, ref, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": _version(),
            "description": "Orders, wallets, products and notifications of the order saga. "
            "Errors are RFC 9457 problem+json; amounts are decimal strings; lists are "
            "paginated with an opaque cursor.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                  "description": "A token from POST /auth/token."},
            },
        },
    }


def _operation(route: Route, ref: RefFn, schemas: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": _parameters(route, ref, schemas),
        "responses": {str(route.status): _success(route, ref)},
    }
    if not operation["parameters"]:
        del operation["parameters"]
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(route.body, "validation")}},
        }
    errors = set(route.errors) | {500}
    if route.body is not None:
        errors |= {400, 413, 415, 422}
    if route.query is not None:
        errors.add(422)
    if route.auth != "none":
        operation["security"] = [{SECURITY_SCHEME: []}]
        errors |= {401, 403} if route.auth == "admin" else {401}
    for status in sorted(errors):
        operation["responses"][str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/problem+json": {"schema": ref(Problem, "serialization")}},
        }
    return operation


def _parameters(route: Route, ref: RefFn, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": m.group(2), "in": "path", "required": True,
         "schema": _CONVERTER_SCHEMAS.get(m.group(1) or "", {"type": "string"})}
        for m in _PARAM.finditer(route.path)
    ]
    if route.query is not None:
        # Each field of the query model is one query parameter, its schema the field's.
        name = ref(route.query, "validation")["$ref"].rsplit("/", 1)[-1]
        model_schema = schemas[name]
        required = set(model_schema.get("required", []))
        for field, schema in model_schema.get("properties", {}).items():
            param: dict[str, Any] = {"name": field, "in": "query", "required": field in required,
                                     "schema": schema}
            if "description" in schema:
                param["description"] = schema["description"]
            params.append(param)
    params += [
        {"name": h.name, "in": "header", "required": False, "description": h.description,
         "schema": {"type": "string", "minLength": 1, "maxLength": h.max_length}}
        for h in route.headers
    ]
    return params


def _success(route: Route, ref: RefFn) -> dict[str, Any]:
    response: dict[str, Any] = {"description": HTTPStatus(route.status).phrase}
    if route.response is not None:
        response["content"] = {"application/json": {"schema": ref(route.response,
                                                                  "serialization")}}
    elif route.produces != "application/json":
        response["content"] = {route.produces: {"schema": {"type": "string"}}}
    else:
        response["content"] = {"application/json": {"schema": {"type": "object"}}}
    if route.response_headers:
        response["headers"] = {
            name: {"description": description, "schema": {"type": "string"}}
            for name, description in route.response_headers
        }
    return response


def _version() -> str:
    try:
        return metadata.version("knative-order-saga")
    except metadata.PackageNotFoundError:
        return "0.0.0"

