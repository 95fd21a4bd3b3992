"""Property-based fuzzing of the console against its own OpenAPI document (schemathesis), as
tests/security/test_api_schemathesis.py does for the api: generated requests across every
operation, authenticated as an admin; no answer may be a 5xx, and every answer must match
what the document says. In-process, on the session's real PostgreSQL and broker;
derandomized. What it generates cannot match a real order or letter, and a bulk run needs
the count typed back, so nothing is changed but what a refusal writes to the audit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from functions_framework import create_app
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from common.auth import ADMIN_ROLE, issue_token
from common.settings import Settings
from functions.console.runtime_view import close_kafka
from tools import REPO_ROOT

EXAMPLES_PER_ROUTE = 25
MIN_CASES = 300

_create_app: Callable[..., Any] = create_app  # functions-framework is untyped
APP: Any = _create_app("console", str(REPO_ROOT / "functions" / "console" / "main.py"), "http")
SCHEMA = schemathesis.openapi.from_wsgi("/console/openapi.json", APP)
CASES: Counter[str] = Counter()
# As for the api: a schema-valid request may still be refused for what it names (no such
# order: 404; a count not typed back: 409), and unknown query parameters are ignored.
NOT_CHECKED = [positive_data_acceptance, negative_data_rejection]


def _operations() -> set[str]:
    found = set()
    for result in SCHEMA.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found.add(f"{result.ok().method.upper()} {result.ok().path}")
    return found


DOCUMENTED = _operations()
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def _lag_reader_closed() -> Iterator[None]:
    """The console's Kafka clients go before the session's broker does."""
    yield
    close_kafka()


@SCHEMA.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_ROUTE, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_console_answers_as_documented(case: Any, saga_env: Settings) -> None:
    token = issue_token(saga_env, "fuzz-operator", roles=[ADMIN_ROLE])
    CASES[f"{case.method} {case.path}"] += 1
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                           excluded_checks=NOT_CHECKED)


def test_enough_cases_were_generated() -> None:
    """Runs after the parametrized test (file order): the fuzzing covered the console."""
    if not CASES:
        pytest.skip("the fuzz test was deselected")
    documented = {route: n for route, n in CASES.items() if route in DOCUMENTED}
    assert set(documented) == DOCUMENTED, dict(CASES)
    assert sum(documented.values()) >= MIN_CASES, documented
