"""Figures of a load (percentiles, throughput, timeline), the check's scope patterns, the
bench report's shape, the pgbench script's translation: no I/O."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tools.bench.stack import pgbound, report
from tools.bench.stack.procstats import largest_function
from tools.loadgen import metrics
from tools.loadgen.check import CheckReport, Scope, Violation
from tools.loadgen.invariants import _LEGAL, INVARIANTS, SCOPE
from tools.loadgen.load import LoadResult, OrderRecord


def _record(i: int, submitted: float, terminal: float | None, scenario: Any = "happy"
            ) -> OrderRecord:
    r = OrderRecord(i, scenario, "c", str(uuid.uuid4()), submitted_at=submitted,
                    order_id=uuid.uuid4())
    if terminal is not None:
        r.status, r.terminal_at = "COMPLETED", terminal
    return r


def test_percentile_interpolates_like_numpy() -> None:
    values = [float(v) for v in range(1, 101)]
    assert metrics.percentile(values, 50) == pytest.approx(50.5)
    assert metrics.percentile(values, 99) == pytest.approx(99.01)
    assert metrics.percentile([7.0], 95) == 7.0
    assert metrics.percentile([], 50) is None


def test_latency_excludes_payment_timeouts_and_unsettled_orders() -> None:
    records = [_record(0, 100.0, 100.2), _record(1, 100.0, None),
               _record(2, 100.0, 400.0, scenario="timeout")]
    assert metrics.latencies_ms(records) == [pytest.approx(200.0)]
    assert len(metrics.latencies_ms(records, exclude_timeouts=False)) == 2


def test_throughput_is_settled_orders_over_first_post_to_last_terminal() -> None:
    records = [_record(i, 100.0 + i * 0.1, 101.0 + i * 0.1) for i in range(10)]
    # 10 settled between t=100.0 and t=101.9
    assert metrics.throughput(records) == pytest.approx(10 / 1.9)
    assert metrics.throughput([_record(0, 1.0, None)]) == 0.0


def test_timeline_counts_per_second() -> None:
    records = [_record(0, 10.0, 11.5), _record(1, 10.5, 12.2), _record(2, 11.1, None)]
    assert metrics.timeline(records) == {"submitted": [2, 1, 0], "terminal": [0, 1, 1]}


def test_submit_rate() -> None:
    result = LoadResult([_record(i, 0.0, None) for i in range(20)], started_at=0.0,
                        submitted_until=4.0)
    assert metrics.submit_rate(result) == 5.0


def test_scope_patterns_escape_like_wildcards() -> None:
    assert Scope().params() == {"customer_like": None, "sku_like": None, "since": None}
    params = Scope(customer_prefix="load_1%-", sku_prefix="A").params()
    assert params["customer_like"] == "load\\_1\\%-%"
    assert params["sku_like"] == "A%"


def test_every_invariant_is_named_once_and_scoped() -> None:
    names = [i.name for i in INVARIANTS]
    assert len(names) == len(set(names))
    assert "WITH so AS" in SCOPE
    for invariant in INVARIANTS:
        assert any(cte in invariant.sql for cte in (" so", "sc ", "ss ", "messaging.")), (
            invariant.name)
    assert "('PAID', 'COMPLETED')" in _LEGAL and "('COMPLETED'," not in _LEGAL


def test_report_summary_names_rows() -> None:
    bad = CheckReport(ok=False, violations=[Violation(
        "stock_conservation", "per SKU ...", 25, [{"sku": f"S{i}"} for i in range(20)])],
        checked={"orders": 3})
    text = bad.summary()
    assert "stock_conservation: 25 row(s)" in text and "sku=S0" in text
    assert "... and 5 more" in text
    assert CheckReport(ok=True, checked={"orders": 3}).summary().startswith("saga check: OK")


def test_printable_bench_json_puts_the_headline_first_and_drops_bulk() -> None:
    result = {k: 1 for k in report.HEADLINE} | {"latencies_ms": [1.0] * 5, "timeline": {},
                                                 "extra": True}
    printed = report.printable(result)
    assert list(printed)[: len(report.HEADLINE)] == list(report.HEADLINE)
    assert "latencies_ms" not in printed and printed["extra"] is True


def test_largest_function_rss_ignores_infrastructure() -> None:
    processes = {"postgres": {"peak_rss_mb": 500.0}, "broker": {"peak_rss_mb": 90.0},
                 "runtime": {"peak_rss_mb": 99.0}, "inventory/worker": {"peak_rss_mb": 70.0},
                 "api": {"peak_rss_mb": 75.0}}
    assert largest_function(processes, "peak_rss_mb") == 75.0


def test_largest_function_uss_skips_processes_gone_before_it_was_read() -> None:
    processes: dict[str, dict[str, Any]] = {
        "runtime": {"uss_mb_at_end": 60.0}, "dlq/worker": {"uss_mb_at_end": None},
        "api/worker": {"uss_mb_at_end": 22.9}, "inventory/worker": {}}
    assert largest_function(processes, "uss_mb_at_end") == 22.9


def test_pgbench_script_translates_to_psycopg_statements() -> None:
    parsed = pgbound._statements()
    statements = [sql for sql, _ in parsed]
    assert statements[0] == "BEGIN"
    assert sum(s == "COMMIT" for s in statements) == pgbound.TRANSACTIONS_PER_ORDER == 10
    # The 9 steps, then one batch marking the 7 published rows, committed asynchronously.
    assert sum(s.startswith("INSERT INTO messaging.inbox") for s in statements) == 8
    assert sum(s.startswith("INSERT INTO messaging.outbox") for s in statements) == 7
    updates = [s for s in statements if s.startswith("UPDATE messaging.outbox")]
    assert len(updates) == 1 and statements[-3] == "SET LOCAL synchronous_commit = off"
    assert all(":oid" not in s and "\\" not in s for s in statements)
    create_sql, create_uses = parsed[2]
    assert create_sql.count("%s") == len(create_uses) and create_uses[0] == "oid"
    assert "::" not in " ".join(statements).replace(
        "CAST(", "")
