"""`saga send --to` a function that scaled to zero, as a person reproducing a failure meets
it (a function idle most of the time): on a stack of its own whose idle functions scale to
zero after 2 s (SAGA_IDLE_SCALE_TO_ZERO_S), `saga status` shows notifications (min-scale
0, no retention period) scaled to zero; `saga send --to notifications` an order.completed
answers 2xx, says it started the function, and the customer's notification row is written.
Then the runtime's control port, which started it, refuses a wrong token and an unknown
function. Every command runs as a person types it, with only the state dir set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, text

from common.events import catalogue as c
from common.settings import to_sqlalchemy_url
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.stack_support import saga_up
from tests.helpers import wait_for
from tools import REPO_ROOT
from tools.infra.ports import free_port
from tools.runtime.control import ControlClient, ControlError

pytestmark = pytest.mark.e2e

IDLE_S = 2


@dataclass
class Stack:
    database_url: str
    env: dict[str, str]  # an operator's shell: only the state dir set
    state: dict[str, Any]  # runtime-state.json once running

    def saga(self, *argv: str) -> tuple[int, str, str]:
        done = subprocess.run([sys.executable, "-m", "tools.cli.main", *argv], check=False,
                              cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
                              timeout=120)
        return done.returncode, done.stdout, done.stderr

    def notifications_of(self, order_id: str) -> list[tuple[str, str]]:
        engine = create_engine(to_sqlalchemy_url(self.database_url), poolclass=pool.NullPool)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT customer_id, kind FROM notifications.notifications "
                    "WHERE order_id = CAST(:order AS uuid)"), {"order": order_id})
                return [(row.customer_id, row.kind) for row in rows]
        finally:
            engine.dispose()


@pytest.fixture
def stack(fresh_database: Callable[[str], str], tmp_path: Path) -> Iterator[Stack]:
    state_dir = tmp_path / "state"
    database_url = fresh_database("send_idle")
    base = {k: v for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SAGA_KAFKA_BROKER_KIND", "DATABASE_URL")}
    env = base | {"DATABASE_URL": database_url, "SAGA_STATE_DIR": str(state_dir),
                  "SAGA_API_PORT": str(free_port()), "SAGA_JWT_SECRET": TEST_JWT_SECRET,
                  "SAGA_PROFILE": "local", "SAGA_IDLE_SCALE_TO_ZERO_S": str(IDLE_S)}
    with saga_up(env, state_dir, tmp_path / "saga-up.log") as state:
        yield Stack(database_url, base | {"SAGA_STATE_DIR": str(state_dir)}, state)


def function_state(stack: Stack, name: str) -> str:
    code, out, err = stack.saga("status", "--json")
    assert code == 0, err
    [function] = [f for f in json.loads(out)["functions"] if f["name"] == name]
    return str(function["state"])


def test_send_to_a_function_that_scaled_to_zero(stack: Stack) -> None:
    wait_for(lambda: function_state(stack, "notifications") == "scaled_to_zero", timeout=60,
             interval=0.5, message=f"notifications to scale to zero after {IDLE_S} s idle")

    order, customer = str(uuid.uuid4()), f"idle-{uuid.uuid4().hex[:8]}"
    data = json.dumps({"order_id": order, "customer_id": customer})
    code, out, err = stack.saga("send", c.ORDER_COMPLETED, "--data", data,
                                "--to", "notifications", "--json")
    assert code == 0, out + err
    sent = json.loads(out)
    assert 200 <= sent["status"] < 300 and sent["cold_start"] is True, sent
    assert stack.notifications_of(order) == [(customer, "order.completed")]

    control = stack.state["control"]
    with pytest.raises(ControlError, match="HTTP 403"):
        ControlClient(control["url"], "not-the-token").start_function("notifications")
    with pytest.raises(ControlError, match=r"HTTP 404 .*no function 'nope'.*notifications"):
        ControlClient(control["url"], control["token"]).start_function("nope")
