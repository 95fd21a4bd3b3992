"""Long work shows its progress (tools/progress.py), through real commands on the running
stack, where nobody watches a terminal (a pipe, as in CI): `saga load` writes a plain line
every few seconds on stderr while its JSON stays alone on stdout, and nothing with
--quiet; `saga replay` follows the re-delivery until every moved group's lag is 0 before
it returns, and says what it waited for (or that nobody consumes, so it does not wait)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from tests.conftest import TEST_JWT_SECRET
from tests.e2e.conftest import LocalStack
from tests.e2e.test_ops_status import backlog, ops, settle, wait_terminal
from tests.e2e.test_replay import records_since, skipped, step_lines
from tests.helpers import run_saga
from tools import REPO_ROOT
from tools.manifests.loader import load_project_manifests
from tools.runtime.control import ControlClient

pytestmark = pytest.mark.e2e
__all__ = ["ops"]  # the fixture, shared with test_ops_status.py

ORDERS, RATE = 200, 15.0  # about 13 s of placing: two plain lines of each task at least
PLAIN = r"saga load: orders {what} (\d+)/{n} orders, [\d.,]+ orders/s, \d:\d\d:\d\d elapsed, " \
        r"~\d:\d\d:\d\d left"
# What `saga load --json` has always printed (docs/benchmarks.md), and nothing else.
LOAD_JSON_KEYS = {"orders", "accepted", "post_failed", "action_failed", "settled", "unsettled",
                  "outcomes", "unexpected_outcomes", "retried_requests", "p50_ms", "p95_ms",
                  "p99_ms", "max_ms", "latency_samples", "run_id", "orders_per_s",
                  "submit_rate_per_s", "duration_s"}


def load(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    """`saga load` as a person's shell runs it, its output piped (not a terminal)."""
    assert stack.settings.database_url is not None
    env = dict(os.environ) | {"SAGA_STATE_DIR": str(stack.state_dir),
                              "DATABASE_URL": stack.settings.database_url.get_secret_value(),
                              "SAGA_JWT_SECRET": TEST_JWT_SECRET, "SAGA_PROFILE": "local"}
    return subprocess.run([sys.executable, "-m", "tools.cli.main", "load", *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240,
                          check=False)


def periodic(stderr: str, what: str, n: int) -> list[int]:
    """The counts of the periodic lines of one task, in the order they came."""
    pattern = re.compile(PLAIN.format(what=what, n=n))
    return [int(m[1]) for line in stderr.splitlines() if (m := pattern.fullmatch(line))]


def test_saga_load_in_a_pipe_writes_plain_lines_and_its_json_unchanged(
        local_stack: LocalStack) -> None:
    done = load(local_stack, "--orders", str(ORDERS), "--rate", str(RATE), "--customers", "3",
                "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout)  # stdout is the JSON alone
    assert set(figures) == LOAD_JSON_KEYS
    assert figures["accepted"] == figures["settled"] == ORDERS

    placed = periodic(done.stderr, "placed", ORDERS)
    assert len(placed) >= 2, done.stderr  # every 5 s while placing: ~13 s
    assert placed == sorted(placed) and placed[-1] < ORDERS
    assert periodic(done.stderr, "settled", ORDERS), done.stderr
    assert re.search(r"^saga load: customers set up: 3/3 customers in ", done.stderr, re.M)
    assert re.search(rf"^saga load: orders placed: {ORDERS}/{ORDERS} orders in \d:\d\d:\d\d "
                     r"\([\d.,]+ orders/s\)$", done.stderr, re.M)
    assert re.search(rf"^saga load: orders settled: {ORDERS}/{ORDERS} orders in ",
                     done.stderr, re.M)
    assert "\r" not in done.stderr and "\x1b" not in done.stderr  # never an animation

    quiet = load(local_stack, "--orders", "3", "--customers", "1", "--json", "--quiet")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert json.loads(quiet.stdout)["settled"] == 3
    assert "saga load:" not in quiet.stderr


def test_replay_returns_once_the_events_are_delivered_again(ops: LocalStack) -> None:
    settle(ops)
    since = datetime.now(UTC)
    api = ops.client(f"replay-wait-{uuid.uuid4().hex[:6]}")
    api.create_account()
    api.deposit("20.00")
    orders = [api.place_order([("MUG-001", 1)])["id"] for _ in range(3)]
    wait_terminal(api, orders)
    settle(ops)
    source = load_project_manifests(REPO_ROOT).kafka_sources["notifications"]
    expected = records_since(ops.settings, source.topics, int(since.timestamp() * 1000))
    assert expected >= len(orders)
    started = datetime.now(UTC)

    code, out, err = run_saga("replay", "--source", "notifications", "--to-time",
                              since.isoformat(), "--pause")
    assert code == 0, err
    # Returned only once every event was delivered again: nothing left to wait for now.
    assert backlog(ops)["notifications"] == 0
    assert skipped(step_lines(ops, "notifications", started), "notifications") >= expected
    assert re.search(rf"^saga replay: events delivered again \(notifications\): "
                     rf"{expected}/{expected} events in \d:\d\d:\d\d \([\d.,]+ events/s\)$",
                     err, re.M), err
    assert re.search(r"^saga replay: notifications: group saga-notifications committed "
                     rf"{expected} event\(s\) again in [\d.]+ s: its lag up to the end of each "
                     r"partition at the move is 0$", out, re.M), out


def test_replay_does_not_wait_for_a_group_nobody_consumes(ops: LocalStack) -> None:
    """A cluster's KafkaSource scaled to zero, played here by pausing the source by hand."""
    settle(ops)
    control = ops.state()["control"]
    client = ControlClient(control["url"], control["token"])
    client.pause("notifications")
    try:
        code, out, err = run_saga("replay", "--source", "notifications", "--to-time",
                                  datetime.now(UTC).isoformat())
    finally:
        client.resume("notifications")
    assert code == 0, err
    assert "notifications: no consumer in group saga-notifications; its events are " \
           "delivered again once its KafkaSource consumes" in out
    assert "events delivered again" not in err
