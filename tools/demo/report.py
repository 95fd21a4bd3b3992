"""How the demo prints: plain text that reads well in a terminal and in a CI log."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TextIO

from tools.demo.drive import Outcome
from tools.progress import Progress

WIDTH = 88


class Printer:
    """Line-buffered output shared by the threads that follow orders, kept clear of the
    progress bar when both are on the terminal."""

    def __init__(self, out: TextIO, progress: Progress | None = None) -> None:
        self._out = out
        self.bar = progress or Progress.silent()
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def line(self, text: str = "") -> None:
        with self._lock:
            self.bar.echo(text, self._out)

    def heading(self, text: str) -> None:
        self.line()
        self.line(text)
        self.line("=" * min(len(text), WIDTH))

    def progress(self, key: str, text: str) -> None:
        self.line(f"  {time.monotonic() - self._started:6.1f}s  {key:<22} {text}")


def order_block(number: int, outcome: Outcome) -> list[str]:
    scenario, order = outcome.scenario, outcome.order
    sku, quantity = outcome.line
    verdict = "ok" if outcome.ok and not outcome.skipped else (
        "SKIPPED" if outcome.skipped else "NOT AS EXPECTED")
    lines = [f"{number}. {scenario.title}  [{verdict}]",
             f"   {scenario.customer}, {scenario.payment_mode} mode, {quantity} x {sku}"
             + (f", ship to {scenario.address!r}" if "UNDELIVERABLE" in scenario.address
                else "")]
    if order is not None:
        end = order["status"] + (f" ({order['reason']})" if order.get("reason") else "")
        lines.append(f"   order {order['id']}: {end}, total {order['total']}")
    lines.append(f"   why: {scenario.why}")
    lines += [f"   note: {note}" for note in outcome.notes]
    if outcome.skipped:
        lines.append(f"   skipped: {outcome.skipped}")
    lines += [f"   PROBLEM: {problem}" for problem in outcome.problems]
    if order is not None and order.get("timeline"):
        lines.append("   timeline (GET /orders/{id}):")
        lines += ["     " + row for row in timeline_rows(order["timeline"])]
    return lines


def timeline_rows(timeline: list[Mapping[str, Any]]) -> list[str]:
    start = _when(timeline[0]["at"])
    rows = []
    for entry in timeline:
        offset = (_when(entry["at"]) - start).total_seconds()
        step = (entry["to_status"] if entry["from_status"] is None
                else f"{entry['from_status']} -> {entry['to_status']}")
        if entry.get("reason"):
            step += f" ({entry['reason']})"
        rows.append(f"+{offset:6.3f}s  {step:<56} by {entry['actor']}")
    return rows


def wallet_block(name: str, account: Mapping[str, Any]) -> list[str]:
    lines = [f"{name}: balance {account['balance']}, frozen {account['frozen']}",
             "   ledger, oldest first (GET /accounts/me):"]
    for entry in reversed(account.get("ledger", [])):
        order = f"order {str(entry['order_id'])[:8]}" if entry.get("order_id") else ""
        lines.append(f"     {entry['kind']:<8} {entry['amount']:>9}   balance "
                     f"{entry['balance_after']:>9}  frozen {entry['frozen_after']:>8}  "
                     f"{order}".rstrip())
    return lines


def notification_block(name: str, notes: Iterable[Mapping[str, Any]]) -> list[str]:
    lines = [f"{name} (GET /notifications, oldest first):"]
    for note in sorted(notes, key=lambda n: str(n["created_at"])):
        lines.append(f"     [{note['kind']}] {note['title']}: {note['body']}")
    return lines


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)
