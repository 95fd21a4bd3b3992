"""`saga demo` (`./taskw demo`) end to end: every way an order can end, on a stack of the
demo's own (the default), and attached to a running stack (the `local_stack` fixture)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import LocalStack
from tests.e2e.trail_support import ecs_problems, log_lines, orders_of, trace_problems
from tools import REPO_ROOT
from tools.apiclient import ApiClient
from tools.demo.run import PASSWORD
from tools.log_contract import flatten
from tools.runtime.state import read_state

pytestmark = pytest.mark.e2e

DEMO_TIMEOUT_S = 150  # the demo's own budget is ~90 s on a busy machine, ~35 s on an idle one


def _demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tools.cli.main", "demo", *args], cwd=REPO_ROOT,
        env=dict(os.environ) | env, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    print(result.stdout)  # the whole tour in the test report, for post-mortems
    print(result.stderr, file=sys.stderr)
    return result


@dataclass(frozen=True)
class OwnDemo:
    result: subprocess.CompletedProcess[str]
    state_dir: Path  # the demo's stack: runtime-state.json, logs/
    database_url: str


@pytest.fixture(scope="module")
def own_demo(fresh_database: Callable[[str], str],
             tmp_path_factory: pytest.TempPathFactory) -> OwnDemo:
    """`saga demo` on a stack of its own, once for the tests that read its output, its logs
    and its database. The session's PostgreSQL (a fresh database) instead of an embedded
    one, and the stack's own embedded broker, as `./taskw demo` on a developer's machine
    would."""
    state_dir, database_url = tmp_path_factory.mktemp("demo"), fresh_database("demo")
    result = _demo({"DATABASE_URL": database_url, "SAGA_STATE_DIR": str(state_dir)})
    return OwnDemo(result, state_dir / "demo", database_url)


def test_the_demo_shows_every_ending_on_its_own_stack(own_demo: OwnDemo) -> None:
    result = own_demo.result
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout
    assert "7 of 7 orders ended as expected; the wallets add up." in out
    for ending in ("COMPLETED", "CANCELLED (out_of_stock)", "CANCELLED (insufficient_funds)",
                   "CANCELLED (payment_timeout)", "CANCELLED (cancelled_by_customer)",
                   "CANCELLED (shipping_failed)"):
        assert f": {ending}, total" in out, ending
    assert "[payment.refunded]" in out and "refund " in out  # notification and ledger line
    assert "PAID -> CANCELLED (shipping_failed)" in out  # a timeline, printed
    # The demo stopped its stack: the runtime says so and its process is gone.
    state = read_state(own_demo.state_dir) or {}
    assert state.get("phase") == "stopped"
    assert not psutil.pid_exists(int(state["pid"])) or (
        psutil.Process(int(state["pid"])).status() == psutil.STATUS_ZOMBIE)


def test_every_line_the_demo_stack_wrote_is_an_ecs_document(own_demo: OwnDemo) -> None:
    """What Kibana receives, read where Filebeat reads it: every line of every function
    (and of the runtime) is an ECS document with ecs.version and keeps the contract."""
    assert own_demo.result.returncode == 0, own_demo.result.stdout[-3000:]
    lines = log_lines(own_demo.state_dir / "logs")
    assert len(lines) > 100, len(lines)  # seven orders' worth
    broken = ecs_problems(lines)
    assert not broken, json.dumps(broken, indent=1)


def test_each_order_is_its_own_trace_and_each_later_request_one_linked_to_it(
        own_demo: OwnDemo) -> None:
    """docs/observability.md, "One order, its traces", on the demo's seven orders: what
    the saga did by itself is in the order's own trace; the customer's pay (confirm mode)
    and cancel requests are traces of their own that link to the order's and hold what
    they caused."""
    assert own_demo.result.returncode == 0, own_demo.result.stdout[-3000:]
    docs = [flatten(json.loads(line)) for line in log_lines(own_demo.state_dir / "logs")]
    orders = orders_of(own_demo.database_url)
    assert len(orders) == 7
    problems = {o.id: p for o in orders if (p := trace_problems(docs, o))}
    assert not problems, json.dumps(problems, indent=1)
    traces = {o.id: {d["trace.id"] for d in docs if d.get("labels.order_id") == o.id}
              for o in orders}
    # Not vacuous: the pay and the cancel each made a second trace, the rest kept one.
    by_customer = {o.customer_changes: len(traces[o.id]) for o in orders if o.customer_changes}
    assert by_customer == {("PAYMENT_PROCESSING",): 2, ("CANCELLED",): 2}, by_customer
    assert sorted(len(traces[o.id]) for o in orders if not o.customer_changes) == [1] * 5


def test_the_demo_attaches_to_a_running_stack(local_stack: LocalStack) -> None:
    """The stack of `./taskw up` has the default 5-minute payment window: the demo does not
    wait for payment_timeout there (it says so) and every other ending is as expected."""
    result = _demo({"SAGA_STATE_DIR": str(local_stack.state_dir)}, "--attach")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "6 of 7 orders ended as expected, 1 not waited for; the wallets add up." in (
        result.stdout)
    assert "skipped payment-timeout" in result.stdout
    # Leave no saga in flight for the tests after this one: alice cancels what still waits.
    alice = re.search(r"\b(alice-[0-9a-f]{6})\b", result.stdout)
    assert alice is not None
    api = ApiClient(local_stack.api_url)
    api = api.as_customer(api.login(alice.group(1), PASSWORD))
    for order in api.request("GET", "/orders?limit=100")["items"]:
        if order["status"] == "AWAITING_PAYMENT":
            api.cancel(order["id"])


def test_attach_without_a_running_stack_says_what_to_do(tmp_path: Path) -> None:
    result = _demo({"SAGA_STATE_DIR": str(tmp_path)}, "--attach")
    assert result.returncode == 2
    assert "no running stack found" in result.stdout and "./taskw up" in result.stdout
