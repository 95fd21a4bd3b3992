"""The probes in knative/*.yaml hit endpoints every function really serves: each function is
built the way its manifest says (FUNCTION_TARGET/SOURCE/SIGNATURE_TYPE, FUNCTION_USE_ASGI)
and asked GET /livez and GET /readyz. An event function answers nothing else to a GET
(405), so without these routes a revision would never become ready."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.resources import Resources
from common.serving import probes
from common.settings import get_settings
from tests.contract.k8s_support import container, env, rendered, services
from tests.helpers import close_function_resources, function_client

FUNCTIONS = sorted(services(rendered("dev")))
# Nothing listens on port 9 (discard): connecting fails at once.
UNREACHABLE = "postgresql://saga@127.0.0.1:9/saga"


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    monkeypatch.setenv("SAGA_JWT_SECRET", "probe-test-secret-" + "x" * 32)
    monkeypatch.setenv("SAGA_STATE_DIR", str(tmp_path))
    yield
    close_function_resources()


def client(function: str) -> Any:
    variables = env(services(rendered("dev"))[function])
    return function_client(variables["FUNCTION_TARGET"], variables["FUNCTION_SOURCE"],
                           variables["FUNCTION_SIGNATURE_TYPE"],
                           asgi=variables.get("FUNCTION_USE_ASGI") == "true")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_answers_its_probes(function: str) -> None:
    spec = container(services(rendered("dev"))[function])
    http = client(function)
    live = http.get(spec["livenessProbe"]["httpGet"]["path"])
    assert live.status_code == 200, live.get_data(as_text=True)
    # Readiness includes PostgreSQL: unreachable here, so not ready (and no exception).
    ready = http.get(spec["readinessProbe"]["httpGet"]["path"])
    assert ready.status_code == 503
    assert ready.get_json()["status"] == "unavailable"
    assert ready.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("function", ["inventory", "timeouts"])
def test_posts_still_reach_the_function(function: str) -> None:
    """The probe routes are GET only: a POST to the same path is the function's (here: a
    body that is no CloudEvent, refused by the step runtime, not by routing)."""
    response = client(function).post(probes.LIVENESS_PATH, data=b"{}",
                                     content_type="application/json")
    assert response.status_code not in (404, 405), response.status_code


class _Answering(Resources):
    """Resources whose database answers (tests/integration/test_unit_of_work.py pings a
    real one)."""

    def ping(self) -> None:
        pass


def test_ready_when_the_database_answers() -> None:
    assert probes.ready_answer(_Answering(get_settings())) == (200, '{"status": "ok"}')
