"""Property-based fuzzing of the console against its own OpenAPI document (schemathesis), as
tests/security/test_api_schemathesis.py does for the api: generated requests across every
operation, authenticated as an admin; no answer may be a 5xx, and every answer must match
what the document says. In-process, on the session's real PostgreSQL and broker;
derandomized. What it generates cannot match a real order or letter, and a bulk run needs
the count typed back, so nothing is changed but what a refusal writes to the audit."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from functions_framework import create_app
from pydantic import SecretStr
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from common.auth import ADMIN_ROLE, issue_token
from common.settings import Settings
from functions.console.wiring import ConsoleResources
from tests.conftest import TEST_JWT_SECRET, session_broker_kind
from tools import REPO_ROOT

EXAMPLES_PER_ROUTE = 25
MIN_CASES = 300

_create_app: Callable[..., Any] = create_app  # functions-framework is untyped
APP: Any = _create_app("console", str(REPO_ROOT / "functions" / "console" / "main.py"), "http")
CONSOLE_MAIN = sys.modules["main"]  # its `resources`, read from the environment at import
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


@pytest.fixture(scope="module")
def console_resources(migrated_database: str, kafka_bootstrap: str
                      ) -> Iterator[ConsoleResources]:
    """The resources of a console process on the session's database and broker, as
    saga_env's environment would give it (one for every case); closed (its Kafka clients
    too) before the session's broker goes."""
    made = ConsoleResources(Settings(
        DATABASE_URL=migrated_database, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        kafka_one_record_per_batch=session_broker_kind() == "tansu",
        jwt_secret=SecretStr(TEST_JWT_SECRET)))
    yield made
    made.close()


@SCHEMA.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_ROUTE, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_console_answers_as_documented(case: Any, saga_env: Settings,
                                       console_resources: ConsoleResources,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CONSOLE_MAIN, "resources", console_resources)
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
