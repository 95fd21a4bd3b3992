"""A dead letter's life, whole, as an operator lives it on `./taskw up`: an order whose
payment fails for real (a PostgreSQL trigger refuses its payments row: the step answers
500), retried and dead-lettered; `saga send` reproduces the failure; re-driven twice while
the cause is still there, each new failure a new letter; the cause fixed (the trigger
dropped), re-driven once more, and the order completes. At every point `saga dlq list`,
`saga status` and `saga check`, run as commands and read through their --json, count the
same letters waiting.

A stack of its own: the KafkaSources' backoff is scaled down (SAGA_DELIVERY_BACKOFF_SCALE)
so a failing event is dead-lettered in about a second instead of ~100 s.
"""

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

from common.auth import CUSTOMER_ROLE, issue_token
from common.settings import Settings, to_sqlalchemy_url
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.stack_support import saga_up
from tests.helpers import wait_for
from tools import REPO_ROOT
from tools.apiclient import ApiClient
from tools.infra.ports import free_port

pytestmark = pytest.mark.e2e

POISON = """
CREATE FUNCTION public.dlq_journey_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'payments refused for order %', NEW.order_id; END $$;
CREATE TRIGGER dlq_journey_poison BEFORE INSERT ON payments.payments FOR EACH ROW
    WHEN (NEW.order_id = CAST('{order}' AS uuid)) EXECUTE FUNCTION public.dlq_journey_poison();
"""
CURE = "DROP TRIGGER dlq_journey_poison ON payments.payments; " \
       "DROP FUNCTION public.dlq_journey_poison();"


@dataclass
class Stack:
    api: ApiClient
    database_url: str
    env: dict[str, str]  # an operator's shell: only the state dir, nothing else set
    log: Path

    def saga(self, *argv: str) -> tuple[int, str, str]:
        done = subprocess.run([sys.executable, "-m", "tools.cli.main", *argv], check=False,
                              cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
                              timeout=120)
        return done.returncode, done.stdout, done.stderr

    def sql(self, statements: str) -> Any:
        """Run `statements`; the first column of the first row, if they return one."""
        engine = create_engine(to_sqlalchemy_url(self.database_url), poolclass=pool.NullPool)
        try:
            with engine.begin() as conn:
                result = conn.execute(text(statements))
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()


@pytest.fixture
def stack(fresh_database: Callable[[str], str], tmp_path: Path) -> Iterator[Stack]:
    state_dir, log = tmp_path / "state", tmp_path / "saga-up.log"
    port = free_port()
    database_url = fresh_database("dlq_journey")
    base = {k: v for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SAGA_KAFKA_BROKER_KIND", "DATABASE_URL")}
    env = base | {"DATABASE_URL": database_url, "SAGA_STATE_DIR": str(state_dir),
                  "SAGA_API_PORT": str(port), "SAGA_JWT_SECRET": TEST_JWT_SECRET,
                  "SAGA_PROFILE": "local", "SAGA_DELIVERY_BACKOFF_SCALE": "0.01"}
    customer = f"dlq-{uuid.uuid4().hex[:8]}"
    api = ApiClient(f"http://127.0.0.1:{port}", issue_token(
        Settings(jwt_secret=TEST_JWT_SECRET), customer, roles=[CUSTOMER_ROLE]))
    with saga_up(env, state_dir, log):
        yield Stack(api, database_url, base | {"SAGA_STATE_DIR": str(state_dir)}, log)


def waiting_everywhere(stack: Stack) -> list[dict[str, Any]]:
    """The letters `saga dlq list` shows, once `saga status` and `saga check` agree on how
    many there are."""
    code, out, err = stack.saga("dlq", "list", "--json")
    assert code == 0, err
    listed: list[dict[str, Any]] = json.loads(out)
    code, out, err = stack.saga("status", "--json")
    assert code == 0, err
    counted = json.loads(out)["dead_letters"]
    code, out, err = stack.saga("check", "--json")
    assert code in (0, 1), err
    checked = sum(v["count"] for v in json.loads(out)["violations"]
                  if v["invariant"] == "dead_letters")
    assert len(listed) == counted == checked, (
        f"saga dlq list shows {len(listed)}, saga status counts {counted}, "
        f"saga check finds {checked}")
    return listed


def next_letter(stack: Stack, after: int, redrive_of: int | None = None) -> dict[str, Any]:
    """The one letter waiting, once the dlq stored one newer than `after`."""
    wait_for(lambda: (stack.sql("SELECT max(id) FROM messaging.dead_letters") or 0) > after,
             timeout=90, interval=0.2, message=f"a dead letter after {after}")
    [letter] = waiting_everywhere(stack)
    assert letter["id"] > after and letter["redrive_of"] == redrive_of
    return letter


def test_a_dead_letter_from_poison_to_resolved(stack: Stack) -> None:
    api = stack.api
    api.create_account()
    api.deposit("50.00")
    order = api.place_order([("MUG-001", 1)], payment_mode="confirm")["id"]
    wait_for(lambda: api.order(order)["status"] == "AWAITING_PAYMENT", timeout=60,
             interval=0.3, message="the order to wait for its payment")
    assert waiting_everywhere(stack) == []

    # The cause: payments cannot write this order's payment row. The step answers 500,
    # the KafkaSource retries (8 times) and dead-letters the event; the dlq stores it.
    stack.sql(POISON.format(order=order))
    api.pay(order)
    first = next_letter(stack, after=0)
    assert (first["type"], first["order_id"], first["error_code"], first["failed_at"]) == (
        "shop.payment.requested.v1", order, 500, "payments")

    # Reproduced by hand, straight to the function: the same 500, its problem body shown.
    code, shown, err = stack.saga("dlq", "show", str(first["id"]))
    assert code == 0, err
    data = json.loads(shown)["data"]
    code, out, err = stack.saga("send", "shop.payment.requested.v1", "--data",
                                json.dumps(data), "--to", "payments", "--json")
    assert code == 1, err
    sent = json.loads(out)
    assert (sent["status"], sent["body"]["title"]) == (500, "step failed")
    assert waiting_everywhere(stack) == [first]  # a direct POST leaves no letter

    # Re-driven while the cause is still there: a new failure, a new letter, twice (the
    # second is the letter that once vanished: its key repeated the first re-drive's).
    code, said, err = stack.saga("dlq", "redrive", str(first["id"]))
    assert code == 0 and f"re-drove dead letter {first['id']}" in said, err
    second = next_letter(stack, after=first["id"], redrive_of=first["id"])
    code, _, err = stack.saga("dlq", "redrive", str(first["id"]))
    assert code == 2 and f"failed again as dead letter {second['id']}" in err
    assert stack.saga("dlq", "redrive", str(second["id"]))[0] == 0
    third = next_letter(stack, after=second["id"], redrive_of=second["id"])

    # The cause fixed: the re-drive goes through and the order completes.
    stack.sql(CURE)
    code, _, err = stack.saga("dlq", "redrive", "--all")
    assert code == 0, err
    wait_for(lambda: api.order(order)["status"] == "COMPLETED", timeout=60, interval=0.3,
             message="the order to complete once its payment went through")
    assert waiting_everywhere(stack) == []
    code, out, err = stack.saga("dlq", "list", "--all", "--json")
    assert [(d["id"], d["state"], d["redrive_count"]) for d in json.loads(out)] == [
        (first["id"], "redriven", 1), (second["id"], "redriven", 1),
        (third["id"], "redriven", 1)]
    code, out, err = stack.saga("check", "--json")
    assert code == 0, out  # every invariant, the dead letters' included
    assert json.loads(out)["checked"]["orders"] == 1
