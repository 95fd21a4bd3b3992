"""`saga check`: run every invariant (invariants.py) in one consistent snapshot and name the
rows that break them.

A check right after a load may find convergence rules not met yet (an order.cancelled still
on its way to payments); `settle` re-runs the check until it passes or a deadline passes,
and reports what was still wrong then. Conservation rules are never waited for: one
violation of those is reported by the first check that sees it, even if it later
"heals" (it cannot, but a waiting loop must not hide it if it did).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, create_engine, text

from common.settings import to_sqlalchemy_url
from tools.loadgen.invariants import INVARIANTS, SCOPE, Invariant

COUNTS = """SELECT (SELECT COUNT(*) FROM so) AS orders, (SELECT COUNT(*) FROM sc) AS wallets,
                   (SELECT COUNT(*) FROM ss) AS skus"""
ROW_LIMIT = 20  # violating rows shown per invariant; the count is always complete


@dataclass(frozen=True)
class Scope:
    """Which part of the database to check; all None means everything."""

    customer_prefix: str | None = None
    sku_prefix: str | None = None
    since: datetime | None = None

    def params(self) -> dict[str, Any]:
        return {"customer_like": _like(self.customer_prefix), "sku_like": _like(self.sku_prefix),
                "since": self.since}


@dataclass(frozen=True)
class Options:
    expected_dead_letters: int = 0
    window_grace_s: float = 90.0  # the timeouts sweep runs once a minute
    outbox_grace_s: float = 10.0  # a step publishes after commit; the relay after 3 s


@dataclass
class Violation:
    invariant: str
    rule: str
    count: int
    rows: list[dict[str, Any]]


@dataclass
class CheckReport:
    ok: bool
    violations: list[Violation] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))  # type: ignore[no-any-return]

    def summary(self) -> str:
        what = ", ".join(f"{n} {k}" for k, n in self.checked.items())
        if self.ok:
            return f"saga check: OK ({what}; {len(INVARIANTS)} invariants)"
        lines = [f"saga check: {len(self.violations)} invariant(s) violated ({what})"]
        for v in self.violations:
            lines.append(f"  {v.invariant}: {v.count} row(s) — {v.rule}")
            for row in v.rows:
                lines.append("    " + ", ".join(f"{k}={_short(x)}" for k, x in row.items()))
            if v.count > len(v.rows):
                lines.append(f"    ... and {v.count - len(v.rows)} more")
        return "\n".join(lines)


def engine_for(database_url: str) -> Engine:
    return create_engine(to_sqlalchemy_url(database_url), pool_size=1, max_overflow=0)


def run_check(engine: Engine, scope: Scope = Scope(), options: Options = Options()) -> CheckReport:
    """Every invariant, in one REPEATABLE READ snapshot."""
    params = scope.params() | {"window_grace_s": options.window_grace_s,
                               "outbox_grace_s": options.outbox_grace_s}
    report = CheckReport(ok=True, scope={k: v for k, v in asdict(scope).items() if v})
    # The SQL is the module's own constants; only the parameters come from outside.
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, \
            conn.begin():
        counts = conn.execute(text(SCOPE + COUNTS), params).one()
        report.checked = dict(counts._asdict())
        for invariant in INVARIANTS:
            rows = [dict(r._asdict()) for r in conn.execute(
                text(SCOPE + invariant.sql), params).all()]
            violation = _judge(invariant, rows, options)
            if violation is not None:
                report.violations.append(violation)
    report.ok = not report.violations
    return report


def settle(check: Callable[[], CheckReport], *, timeout_s: float,
           interval_s: float = 2.0) -> CheckReport:
    """Re-run `check` until it passes or `timeout_s` passed; a conservation violation ends
    the wait at once (waiting cannot make it right)."""
    deadline = time.monotonic() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        report = check()
        report.attempts = attempts
        if report.ok or time.monotonic() >= deadline or _hard(report):
            return report
        time.sleep(interval_s)  # polling a converging system, bounded by the deadline


def _hard(report: CheckReport) -> bool:
    converging = {i.name for i in INVARIANTS if i.converges}
    return any(v.invariant not in converging for v in report.violations)


def _judge(invariant: Invariant, rows: list[dict[str, Any]], options: Options
           ) -> Violation | None:
    if invariant.name == "dead_letters":
        if len(rows) <= options.expected_dead_letters:
            return None
        rule = f"{invariant.rule} ({options.expected_dead_letters} expected, {len(rows)} found)"
        return Violation(invariant.name, rule, len(rows), _jsonable(rows[:ROW_LIMIT]))
    if not rows:
        return None
    return Violation(invariant.name, invariant.rule, len(rows), _jsonable(rows[:ROW_LIMIT]))


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (v if isinstance(v, int | float | bool | type(None)) else str(v))
             for k, v in row.items()} for row in rows]


def _like(prefix: str | None) -> str | None:
    if prefix is None:
        return None
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _short(value: Any) -> str:
    text_value = str(value)
    return text_value if len(text_value) <= 40 else text_value[:37] + "..."
