"""A person places an order on the running stack, copies the short id the tools print (its
first 8 characters) and traces it with the real `saga` in a subprocess, in a shell that
knows nothing but the stack's state dir (what `./taskw up` wrote there is enough); then
`saga status` on the same stack answers as it always did."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import LocalStack
from tests.e2e.test_ops_status import wait_terminal
from tools import REPO_ROOT

pytestmark = pytest.mark.e2e

CLEARED = ("DATABASE_URL", "SAGA_DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS",
           "SAGA_KAFKA_BOOTSTRAP_SERVERS", "SAGA_KAFKA_BROKER_KIND")


def saga(stack: LocalStack, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED} | {
        "SAGA_STATE_DIR": str(stack.state_dir)}
    return subprocess.run([sys.executable, "-m", "tools.cli.main", *argv], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def test_trace_by_the_short_id_on_the_running_stack(local_stack: LocalStack) -> None:
    api = local_stack.client("short-id")
    api.create_account()
    api.deposit("20.00")
    order = api.place_order([("MUG-001", 1)])["id"]
    wait_terminal(api, [order])
    done = saga(local_stack, "trace", order[:8], "--json")
    assert done.returncode == 0, done
    entries = json.loads(done.stdout)
    assert [e["what"] for e in entries if e["origin"] == "history"][-1].endswith("COMPLETED")
    done = saga(local_stack, "trace", order[:8])
    assert done.stdout.startswith(f"order {order}: "), done
    status = saga(local_stack, "status", "--json")
    assert status.returncode == 0, status
    assert set(json.loads(status.stdout)) == {"functions", "sources", "outbox", "dead_letters",
                                              "tables"}
