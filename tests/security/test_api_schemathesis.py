"""Property-based fuzzing of the api against its own OpenAPI document (schemathesis):
over a thousand generated requests across every route, authenticated as a customer; no
answer may be a 5xx, and every answer must match what the document says (status code,
content type, headers, body schema).

In-process (the function's WSGI app from functions-framework, as Knative runs it) against
the session's real PostgreSQL and broker, so it needs no running stack. Derandomized: CI
runs the same cases every time; a failure prints the request that reproduces it.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from argon2 import PasswordHasher
from functions_framework import create_app
from pydantic import SecretStr
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from common.auth import issue_token
from common.settings import Settings
from functions.api import auth as api_auth
from functions.api.resources import ApiResources
from tests.conftest import TEST_JWT_SECRET, session_broker_kind
from tools import REPO_ROOT

EXAMPLES_PER_ROUTE = 70  # 17 routes; routes without inputs yield one case each
MIN_CASES = 1000

_create_app: Callable[..., Any] = create_app  # functions-framework is untyped
APP: Any = _create_app("api", str(REPO_ROOT / "functions" / "api" / "main.py"), "http")
API_MAIN = sys.modules["main"]  # its `resources`, read from the environment at import
SCHEMA = schemathesis.openapi.from_wsgi("/openapi.json", APP)
CASES: Counter[str] = Counter()


def _operations() -> list[Any]:
    """Every operation of the document; one schemathesis cannot read fails the module."""
    operations = []
    for result in SCHEMA.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    return operations


DOCUMENTED = {f"{op.method.upper()} {op.path}" for op in _operations()}
# Every default check (no 5xx; status code, content type, headers and body as documented)
# but two that judge the API's policy rather than its document: a schema-valid order may
# still be refused for business reasons (an unknown SKU is 422), and unknown query
# parameters are ignored on purpose (cache busters: functions/api/schemas.PageQuery).
NOT_CHECKED = [positive_data_acceptance, negative_data_rejection]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_resources(migrated_database: str, kafka_bootstrap: str) -> Iterator[ApiResources]:
    """The resources of an api process on the session's database and broker, as saga_env's
    environment would give it (one for every case: a process serves many requests)."""
    made = ApiResources(Settings(
        DATABASE_URL=migrated_database, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        kafka_one_record_per_batch=session_broker_kind() == "tansu",
        jwt_secret=SecretStr(TEST_JWT_SECRET), REDIS_URL=None))
    yield made
    made.close()


@SCHEMA.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_ROUTE, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_answers_as_documented(case: Any, saga_env: Settings, api_resources: ApiResources,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(API_MAIN, "resources", api_resources)
    # argon2 at its real cost (64 MiB, ~0.1 s a hash) would make the auth routes most of
    # this test's time; the schema does not depend on the KDF's parameters.
    monkeypatch.setattr(api_auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                            parallelism=1))
    token = issue_token(saga_env, "fuzz-customer")
    CASES[f"{case.method} {case.path}"] += 1
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                           excluded_checks=NOT_CHECKED)


def test_enough_cases_were_generated(request: pytest.FixtureRequest) -> None:
    """Runs after the parametrized test (file order): the fuzzing really covered the API."""
    if not CASES:
        pytest.skip("the fuzz test was deselected")
    documented = {route: n for route, n in CASES.items() if route in DOCUMENTED}
    assert set(documented) == DOCUMENTED, dict(CASES)
    assert sum(documented.values()) >= MIN_CASES, documented
