"""The console's queries on 100,000 orders use the indexes migration 0004 made for them:
every statement the overview, find and stuck run (through the console's handlers) is
explained, and none reads orders or their lines sequentially. No timing here: the figures
are `./taskw bench:console`'s (docs/benchmarks.md, "The console")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, pool

from common.auth import ADMIN_ROLE, issue_token
from common.migrate import upgrade
from common.settings import to_sqlalchemy_url
from tests.conftest import TEST_JWT_SECRET
from tests.functions.console_support import MAIN
from tests.helpers import function_client
from tools.bench.console import ORDERS, analyze, captured, explain, fill, run_scenarios

pytestmark = pytest.mark.integration

# The index each kind of question must be answered from (others may join in).
EXPECTED = {
    "overview": {"ix_orders_created", "ix_orders_completed", "ix_orders_status_reason"},
    "find: newest first": {"ix_orders_created"},
    "find: next page": {"ix_orders_created"},
    "find: open orders": {"ix_orders_open_created"},
    "find: a cancel reason": {"ix_orders_cancelled"},
    "find: a customer": {"ix_orders_customer_created"},
    "find: an id prefix": {"pk_orders"},
    "find: the last hour": {"ix_orders_created"},
    "stuck": {"ix_orders_open_created"},
}
NEVER_SCANNED = {"orders", "order_items"}


@pytest.fixture(scope="module")
def plans_database(fresh_database: Callable[[str], str]) -> Iterator[str]:
    url = fresh_database("console_plans")
    upgrade(url)
    engine = create_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            fill(conn, ORDERS)
        analyze(engine)
    finally:
        engine.dispose()
    yield url


@pytest.fixture
def console(plans_database: str, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Callable[[str], Any], Engine]]:
    monkeypatch.setenv("DATABASE_URL", plans_database)
    monkeypatch.setenv("SAGA_JWT_SECRET", TEST_JWT_SECRET)
    monkeypatch.delenv("SAGA_RUNTIME_STATE_FILE", raising=False)  # no local runtime here
    client = function_client("console", str(MAIN), "http", asgi=False)
    resources = client.resources  # the console's own: its engine runs the handlers' SQL
    token = issue_token(resources.settings, "planner", roles=[ADMIN_ROLE])

    def get(url: str) -> Any:
        response = client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    yield get, resources.engine
    resources.close()


def test_every_question_is_answered_from_its_indexes(
        console: tuple[Callable[[str], Any], Engine]) -> None:
    get, engine = console
    scenarios = {s.name: s for s in run_scenarios(engine, get, runs=1)}
    assert set(EXPECTED) <= set(scenarios)
    for name, scenario in scenarios.items():
        assert scenario.statements, f"{name}: no statement captured"
        scanned = {r for s in scenario.statements for r in s.seq_scans} & NEVER_SCANNED
        assert not scanned, f"{name} reads {scanned} sequentially: {scenario.statements}"
        used = {i for s in scenario.statements for i in s.indexes}
        assert EXPECTED.get(name, set()) <= used, f"{name} uses {used}"
    sku = {i for s in scenarios["find: a SKU"].statements for i in s.indexes}
    assert sku & {"ix_order_items_sku", "pk_order_items"}, sku


def test_the_capture_sees_what_a_handler_runs(
        console: tuple[Callable[[str], Any], Engine]) -> None:
    get, engine = console
    with captured(engine) as statements:
        page = get("/console/api/orders?limit=3")
    assert len(page["items"]) == 3
    [find] = [s for s in explain(engine, statements) if "orders.orders" in s.sql]
    assert find.indexes == ["ix_orders_created"] and find.seq_scans == []
