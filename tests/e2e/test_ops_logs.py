"""`saga logs` on the running stack, as an operator uses it: one order's lines from every
function that handled it, in time order; one function's lines only; and `-f` showing the
lines the order's next steps write while it runs (stopped with Ctrl-C)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import LocalStack
from tests.e2e.test_ops_status import ops
from tests.helpers import run_saga, wait_for
from tools import REPO_ROOT
from tools.runtime.console import summarise

pytestmark = pytest.mark.e2e
__all__ = ["ops"]  # the fixture, shared with test_ops_status.py


def docs(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def stamp(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["@timestamp"])


def waiting_order(stack: LocalStack) -> tuple[Any, str]:
    """A confirm-mode order waiting for its payment: its customer's client, and its id."""
    customer = stack.client(f"logs-{os.urandom(3).hex()}")
    customer.create_account()
    customer.deposit("20.00")
    order = customer.place_order([("MUG-001", 1)], payment_mode="confirm")["id"]
    wait_for(lambda: customer.order(order)["status"] == "AWAITING_PAYMENT", timeout=30,
             message="the order to wait for its payment")
    return customer, order


def test_one_order_in_time_order_and_one_function_alone(ops: LocalStack) -> None:
    customer, order = waiting_order(ops)
    customer.pay(order)
    wait_for(lambda: customer.order(order)["status"] == "COMPLETED", timeout=60,
             message="the order to complete")
    services = {"api", "inventory", "order-saga", "payments", "shipping", "notifications"}

    def logged() -> list[dict[str, Any]] | None:
        code, out, err = run_saga("logs", "--order", order, "--json")
        assert code == 0, err
        found = docs(out)
        return found if services <= {d["service"]["name"] for d in found} else None

    lines = wait_for(logged, timeout=30, interval=0.3, message="every function's lines")
    assert all(order in (d.get("labels", {}).get("order_id"),
                         d.get("cloudevents", {}).get("subject")) for d in lines)
    assert [stamp(d) for d in lines] == sorted(stamp(d) for d in lines)

    code, out, _ = run_saga("logs", "--order", order)  # the console's own lines
    assert code == 0
    assert out.splitlines() == [summarise(d) for d in lines]

    code, out, err = run_saga("logs", "inventory", "--json")
    assert code == 0, err
    inventory = docs(out)
    assert any(order in json.dumps(d) for d in inventory)
    assert {d["service"]["name"] for d in inventory} == {"inventory"}
    assert [stamp(d) for d in inventory] == sorted(stamp(d) for d in inventory)

    code, _, err = run_saga("logs", "inventroy")
    assert code == 2 and "the functions are: api, " in err and "inventory" in err


def test_follow_shows_the_lines_written_after_it_started(ops: LocalStack) -> None:
    customer, order = waiting_order(ops)
    code, out, _ = run_saga("logs", "--order", order)
    assert code == 0
    before = len(out.splitlines())
    assert before >= 3  # placed, reserved, waiting for its payment

    follower = subprocess.Popen(
        [sys.executable, "-m", "tools.cli.main", "logs", "--order", order, "-f"],
        cwd=REPO_ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in follower.stdout or ():
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        shown: list[str] = []

        def has(count: int) -> bool:
            while not lines.empty():
                shown.append(lines.get_nowait().rstrip("\n"))
            return len(shown) >= count

        wait_for(lambda: has(before), timeout=30, interval=0.1, message="what was logged")
        customer.pay(order)  # payments, shipping, the saga and notifications write now
        wait_for(lambda: has(before + 1) and any(" payments " in x for x in shown[before:])
                 and any(" notifications " in x for x in shown[before:]), timeout=60,
                 interval=0.1, message="the order's next lines, followed")
    finally:
        follower.send_signal(signal.SIGINT)  # Ctrl-C
        code = follower.wait(10)
        reader.join(5)
    assert code == 130
    assert shown[:before] == out.splitlines()
    new = shown[before:]
    assert all(order[:8] in line for line in new)
    times = [line.split()[0] for line in shown]  # HH:MM:SS.mmm, the same day
    assert times == sorted(times)
