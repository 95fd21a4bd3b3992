"""`saga bench-console` (`./taskw bench:console`): the console's overview, find and stuck on
a database of ORDERS orders made in SQL (FILL; docs/benchmarks.md, "The tools"), each
request timed RUNS times through the console's own handlers in this process (auth,
validation, the queries, JSON; no network), with the indexes the plan of each statement
uses. DATABASE_URL names the server; unset, an embedded PostgreSQL runs in a temporary
directory. A measurement, asserting nothing: tests/functions/test_console_plans.py holds
the plans to their indexes without timing."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, pool, text

from common.settings import to_sqlalchemy_url

if TYPE_CHECKING:
    from functions.console.wiring import ConsoleResources

ORDERS = 100_000
RUNS = 20

FILL = """
INSERT INTO inventory.products (sku, name, price)
SELECT 'BENCH-' || lpad(i::text, 3, '0'), 'bench product ' || i, 1 + i
  FROM generate_series(0, 19) AS i ON CONFLICT DO NOTHING;
INSERT INTO inventory.stock (sku, on_hand)
SELECT sku, 1000000 FROM inventory.products WHERE sku LIKE 'BENCH-%' ON CONFLICT DO NOTHING;
CREATE TEMP TABLE bench_orders ON COMMIT DROP AS
SELECT gen_random_uuid() AS id, i, 'bench-' || (i % 5000) AS customer_id,
       CASE WHEN i % 100 < 85 THEN 'COMPLETED' WHEN i % 100 < 95 THEN 'CANCELLED'
            WHEN i % 100 < 96 THEN 'CREATED' WHEN i % 100 < 98 THEN 'AWAITING_PAYMENT'
            WHEN i % 100 < 99 THEN 'PAYMENT_PROCESSING' ELSE 'PAID' END AS status,
       now() - make_interval(secs => i * 2.0) AS created_at
  FROM generate_series(1, :orders) AS i;
INSERT INTO orders.orders (id, customer_id, status, reason, payment_mode, total, created_at,
                           updated_at, payment_deadline)
SELECT id, customer_id, status,
       CASE WHEN status = 'CANCELLED' THEN (ARRAY['out_of_stock', 'insufficient_funds',
            'payment_timeout', 'cancelled_by_customer', 'shipping_failed'])[1 + i % 5] END,
       CASE WHEN i % 3 = 0 THEN 'confirm' ELSE 'auto' END, 10 + i % 90, created_at,
       created_at + make_interval(secs => 0.2 + (i % 17) / 10.0),
       CASE WHEN status = 'AWAITING_PAYMENT' THEN created_at + interval '5 minutes' END
  FROM bench_orders;
INSERT INTO orders.order_items (order_id, sku, quantity, unit_price)
SELECT id, 'BENCH-' || lpad((i % 20)::text, 3, '0'), 1 + i % 3, 5 FROM bench_orders
UNION ALL
SELECT id, 'BENCH-' || lpad(((i * 7 + 3) % 20)::text, 3, '0'), 1, 5 FROM bench_orders
 WHERE i % 2 = 0 AND (i * 7 + 3) % 20 <> i % 20;
INSERT INTO messaging.dead_letters (event_id, event_type, source, subject, attributes, data,
                                    error_dest, error_code)
SELECT gen_random_uuid()::text, 'shop.payment.requested.v1', '/saga/order-saga', id::text,
       jsonb_build_object('partitionkey', id::text, 'type', 'shop.payment.requested.v1'),
       convert_to(jsonb_build_object('order_id', id)::text, 'UTF8'),
       'http://payments.order-saga.svc.cluster.local', 500
  FROM bench_orders WHERE status = 'PAYMENT_PROCESSING' AND i % 20 = 0;
"""

# What an operator asks, by name: the console's URL for it.
SCENARIOS: dict[str, str] = {
    "overview": "/console/api/overview",
    "find: newest first": "/console/api/orders",
    "find: next page": "/console/api/orders?cursor={cursor}",
    "find: a status": "/console/api/orders?status=PAYMENT_PROCESSING",
    "find: open orders": "/console/api/orders?status=open",
    "find: a cancel reason": "/console/api/orders?reason=payment_timeout",
    "find: a customer": "/console/api/orders?customer=bench-4242",
    "find: a SKU": "/console/api/orders?sku=BENCH-007",
    "find: an id prefix": "/console/api/orders?id={prefix}",
    "find: the last hour": "/console/api/orders?since={hour_ago}",
    "find: older than a day": "/console/api/orders?older_than_s=86400",
    "stuck": "/console/api/stuck",
}


def fill(conn: Connection, orders: int = ORDERS) -> None:
    """`orders` orders (and their lines and a few dead letters), in the caller's
    transaction; the caller ANALYZEs (and VACUUMs) after commit."""
    for statement in FILL.split(";\n"):
        if statement.strip():
            conn.execute(text(statement), {"orders": orders} if ":orders" in statement else {})


def analyze(engine: Engine) -> None:
    """VACUUM (the visibility map an index-only scan reads) and ANALYZE, as autovacuum
    would soon after such a load."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


@dataclass
class Statement:
    sql: str
    parameters: Any
    indexes: list[str] = field(default_factory=list)
    seq_scans: list[str] = field(default_factory=list)


@contextlib.contextmanager
def captured(engine: Engine) -> Iterator[list[Statement]]:
    """Every SELECT run on `engine` inside the block."""
    seen: list[Statement] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
               _many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append(Statement(statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def explain(engine: Engine, statements: list[Statement]) -> list[Statement]:
    """Each statement with the indexes and sequential scans of its plan."""
    with engine.connect() as conn:
        for statement in statements:
            plan: Any = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement.sql}",
                                             statement.parameters).scalar_one()
            for node in _nodes(plan[0]["Plan"]):
                if "Index Name" in node:
                    statement.indexes.append(node["Index Name"])
                if node.get("Node Type") == "Seq Scan":
                    statement.seq_scans.append(node["Relation Name"])
    return statements


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


@dataclass
class Scenario:
    name: str
    url: str
    times_ms: list[float]
    statements: list[Statement]

    def as_dict(self) -> dict[str, Any]:
        times = sorted(self.times_ms)
        return {"name": self.name, "url": self.url,
                "p50_ms": round(statistics.median(times), 2),
                "p95_ms": round(times[int(len(times) * 0.95) - 1 if len(times) > 1 else 0], 2),
                "max_ms": round(times[-1], 2),
                "indexes": sorted({i for s in self.statements for i in s.indexes}),
                "seq_scans": sorted({r for s in self.statements for r in s.seq_scans})}


def run_scenarios(engine: Engine, get: Callable[[str], Any], runs: int = RUNS
                  ) -> list[Scenario]:
    """Each scenario `runs` times through `get` (a test client's GET with an admin's
    token), timed; then its statements explained."""
    first = get(SCENARIOS["find: newest first"])
    values = {"cursor": first["next_cursor"], "prefix": first["items"][0]["id"][:8],
              "hour_ago": _hour_ago(engine)}
    scenarios = []
    for name, template in SCENARIOS.items():
        url = template.format(**values)
        get(url)  # warm: plans cached, pages in memory, as for an operator's second click
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            get(url)
            times.append((time.perf_counter() - started) * 1000)
        with captured(engine) as statements:
            get(url)
        scenarios.append(Scenario(name, url, times, explain(engine, statements)))
    return scenarios


def _hour_ago(engine: Engine) -> str:
    with engine.connect() as conn:
        moment: Any = conn.execute(text("SELECT now() - interval '1 hour'")).scalar_one()
    return str(moment.isoformat()).replace("+", "%2B")


def console_client(database_url: str) -> tuple[Callable[[str], Any], ConsoleResources]:
    """GET on the console's handlers in this process, as an admin, and the console's
    resources (their engine runs the handlers' statements; the caller closes them)."""
    from functions_framework import create_app

    from common.auth import ADMIN_ROLE, issue_token
    from common.serving.asgi_app import resources_of
    from functions.console.wiring import ConsoleResources
    from tools import REPO_ROOT

    os.environ.update({"DATABASE_URL": database_url,
                       "SAGA_JWT_SECRET": secrets.token_urlsafe(48), "SAGA_LOG_LEVEL": "WARNING"})
    os.environ.pop("SAGA_RUNTIME_STATE_FILE", None)  # no local runtime's functions here
    app = create_app(target="console", source=str(REPO_ROOT / "functions/console/main.py"),
                     signature_type="http")  # type: ignore[no-untyped-call]
    client = app.test_client()
    resources = resources_of(sys.modules.get("main"))  # functions-framework's module name
    if not isinstance(resources, ConsoleResources):
        raise RuntimeError("functions/console/main.py names no ConsoleResources `resources`")
    headers = {"Authorization": "Bearer " + issue_token(resources.settings, "bench",
                                                       roles=[ADMIN_ROLE])}

    def get(url: str) -> Any:
        response = client.get(url, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code} {response.get_data()[:300]!r}")
        return response.get_json()

    return get, resources


@contextlib.contextmanager
def database(orders: int) -> Iterator[str]:
    """A fresh database of `orders` orders on DATABASE_URL's server, or an embedded one."""
    from common.migrate import upgrade
    from tools.infra import create_database, drop_database
    from tools.infra.embedded_pg import EmbeddedPostgres

    with contextlib.ExitStack() as stack:
        server = os.environ.get("DATABASE_URL")
        if not server:
            base = Path(tempfile.mkdtemp(prefix="saga-console-bench-"))
            base.chmod(0o755)  # the embedded server's own account must reach its data dir
            stack.callback(shutil.rmtree, base, True)
            server = stack.enter_context(EmbeddedPostgres(base / "data",
                                                          log_path=base / "pg.log")).url
        name = f"saga_console_bench_{secrets.token_hex(4)}"
        url = create_database(server, name)
        stack.callback(drop_database, server, name)
        upgrade(url)
        engine = create_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)
        try:
            with engine.begin() as conn:
                fill(conn, orders)
            analyze(engine)
        finally:
            engine.dispose()
        yield url


def report(scenarios: list[Scenario], orders: int, fill_s: float) -> str:
    lines = [f"{orders:,} orders filled in {fill_s:.1f} s; each request {RUNS} times "
             "through the console's handlers (no network):",
             f"{'':<26}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}  indexes (sequential scans)"]
    for s in scenarios:
        d = s.as_dict()
        seq = f" (seq: {', '.join(d['seq_scans'])})" if d["seq_scans"] else ""
        lines.append(f"{s.name:<26}{d['p50_ms']:>8.1f}{d['p95_ms']:>8.1f}{d['max_ms']:>8.1f}"
                     f"  {', '.join(d['indexes']) or '-'}{seq}")
    return "\n".join(lines)


def main(orders: int = ORDERS, as_json: bool = False) -> int:
    started = time.monotonic()
    with database(orders) as url:
        fill_s = time.monotonic() - started
        get, resources = console_client(url)
        try:
            scenarios = run_scenarios(resources.engine, get)
        finally:
            resources.close()
    if as_json:
        print(json.dumps({"orders": orders, "fill_s": round(fill_s, 1),
                          "scenarios": [s.as_dict() for s in scenarios]}, indent=2))
    else:
        print(report(scenarios, orders, fill_s))
    return 0
