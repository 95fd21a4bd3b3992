"""Request parsing: body size limit, JSON decoding and validation of bodies, queries and
declared headers, each failure a problem naming what was wrong."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from werkzeug import Request

from common.problems import Problem
from functions.api.errors import field_problem, validation_problem
from functions.api.route_specs import Header

M = TypeVar("M", bound=BaseModel)


def read_json_body(request: Request, max_bytes: int) -> Any:
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise _too_large(max_bytes)
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise Problem(
            415, "unsupported media type", f"send application/json, not {mimetype}",
            headers={"Accept-Post": "application/json"},
        )
    # Read one byte past the limit: a chunked body has no Content-Length to check first.
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise _too_large(max_bytes)
    if not raw.strip():
        raise field_problem("body", "a JSON object is required")
    try:
        # No NaN/Infinity: they are not JSON, and no amount or quantity may be one.
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise Problem(400, "malformed JSON", f"body: {exc}") from None
    except RecursionError:  # "[[[[..." nested deeper than the parser goes
        raise Problem(400, "malformed JSON", "body: nested too deeply") from None


def validate_model(model: type[M], data: Any, *, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc, prefix) from None


def validate_headers(request: Request, headers: Sequence[Header]) -> dict[str, str]:
    values: dict[str, str] = {}
    for header in headers:
        value = request.headers.get(header.name)
        if value is None:
            continue
        if not value or len(value) > header.max_length or not value.isprintable():
            raise field_problem(
                header.name, f"must be 1 to {header.max_length} printable characters"
            )
        values[header.name] = value
    return values


def _too_large(max_bytes: int) -> Problem:
    return Problem(413, "request body too large", f"the limit is {max_bytes} bytes")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON value")
