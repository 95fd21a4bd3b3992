"""RFC 9457 problem details: every error answer, from the API or a step, is one of these."""

from __future__ import annotations

import json
from typing import Any

from werkzeug import Response
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"


def problem_body(status: int, title: str, detail: str = "", **extra: Any) -> str:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return json.dumps(body, default=str)


def problem_response(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    return Response(problem_body(status, title, detail, **extra), status=status,
                    content_type=PROBLEM_JSON)


class Problem(HTTPException):
    """Raise anywhere in a request to answer with a problem+json body."""

    def __init__(self, status: int, title: str, detail: str = "", **extra: Any) -> None:
        self.code = status
        self.title = title
        self.detail = detail
        self.extra = extra
        super().__init__(description=detail or title)

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        return problem_response(self.code or 500, self.title, self.detail, **self.extra)
