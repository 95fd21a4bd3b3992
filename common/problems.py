"""RFC 9457 problem details, framework-free: every error answer, from the api, a step or a
ping job, is a Problem, rendered by its server (common/serving: one renderer per stack).
`fault` is the one mapping of an unexpected exception to a status: 503 for what a retry may
cure (the KafkaSource and clients retry it), 500 for the rest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from common.pg import is_transient

PROBLEM_JSON = "application/problem+json"
UNAVAILABLE = "temporarily unavailable"


class Problem(Exception):
    """Raise anywhere in a request or a step to answer with a problem+json body."""

    def __init__(self, status: int, title: str, detail: str = "", *,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra
        self.headers = dict(headers or {})  # e.g. Retry-After, WWW-Authenticate, Allow

    @property
    def retried(self) -> bool:
        """Whether Knative retries this answer (5xx) rather than dead-lettering it."""
        return self.status >= 500

    def body(self) -> str:
        return problem_body(self.status, self.title, self.detail, **self.extra)


def problem_body(status: int, title: str, detail: str = "", **extra: Any) -> str:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return json.dumps(body, default=str)


def fault(exc: BaseException, failed: str, *, transient_detail: str | None = None,
          failed_detail: str | None = None, headers: Mapping[str, str] | None = None
          ) -> Problem:
    """The answer to an exception nobody expected: 503 titled UNAVAILABLE when a retry may
    cure it (lost connection, serialization conflict), else 500 titled `failed`. Details
    default to the exception's type name (never its text: it may quote a secret)."""
    if fault_status(exc) == 503:
        return Problem(503, UNAVAILABLE, transient_detail or type(exc).__name__,
                       headers=headers)
    return Problem(500, failed, failed_detail or type(exc).__name__)


def fault_status(exc: BaseException) -> int:
    """503 when a retry may cure `exc` (lost connection, serialization conflict), else 500."""
    return 503 if is_transient(exc) else 500
