"""The api's problems: pydantic's errors as 422 problems naming the field, and Flask's own
errors (before our router runs) as problem+json like everything else (common.problems)."""

from __future__ import annotations

from pydantic import ValidationError
from werkzeug import Response
from werkzeug.exceptions import HTTPException

from common.problems import Problem
from common.serving.wsgi import problem_response


def field_name(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """pydantic's error location as a dotted field name: ("items", 0, "quantity") ->
    "items.0.quantity"; a model-level error is named by its prefix, or "body"."""
    parts = [prefix] if prefix else []
    parts += [str(p) for p in loc]
    return ".".join(parts) or "body"


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """Each offending field with its message and pydantic's error type."""
    # Inputs are never echoed (include_input=False): they may be passwords.
    return [
        {"field": field_name(err["loc"], prefix),
         "message": err["msg"].removeprefix("Value error, "), "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def validation_summary(exc: ValidationError, prefix: str = "") -> str:
    """Every offending field and its message on one line, for a log line or a CLI."""
    return "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc, prefix))


def validation_problem(exc: ValidationError, prefix: str = "") -> Problem:
    """422 naming the first offending field in `detail` and every one in `errors`."""
    errors = field_errors(exc, prefix)
    first = errors[0]
    return Problem(
        422, "request validation failed", f"{first['field']}: {first['message']}",
        errors=errors,
    )


def field_problem(field: str, message: str, title: str = "request validation failed") -> Problem:
    """422 for a rule pydantic cannot check (an unknown SKU, a bad cursor), in the same shape
    as validation_problem so clients handle one format."""
    return Problem(
        422, title, f"{field}: {message}",
        errors=[{"field": field, "message": message, "type": "value_error"}],
    )


def not_found(what: str = "resource") -> Problem:
    return Problem(404, "not found", f"no such {what}")


def framework_error(exc: HTTPException) -> Response:
    """For the few answers Flask gives before our router runs (its own /static/ rule,
    /favicon.ico, /robots.txt): problem+json like everything else."""
    return problem_response(Problem(exc.code or 500, (exc.name or "error").lower(),
                                    exc.description or ""))
