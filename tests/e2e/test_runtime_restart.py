"""Restarting `saga up` while orders are in flight, and every order still ends. With Tansu
(messages in memory only) the new runtime re-publishes the outbox of unfinished orders;
with Apache Kafka (logs in the state dir) the records and committed offsets are still
there, and nothing is re-published. A stack of its own (local_stack lives for the
session), started twice on the same database and state dir."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from common.auth import CUSTOMER_ROLE, issue_token
from common.settings import Settings
from tests.conftest import TEST_JWT_SECRET, session_broker_kind
from tests.e2e.stack_support import saga_up
from tests.helpers import wait_for
from tools.apiclient import ApiClient
from tools.infra.apache_kafka import KafkaServer
from tools.infra.ports import free_port
from tools.runtime.control import ControlClient

pytestmark = pytest.mark.e2e


def test_orders_in_flight_survive_a_restart(fresh_database: Callable[[str], str],
                                            tmp_path: Path) -> None:
    state_dir, log = tmp_path / "state", tmp_path / "saga-up.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SAGA_KAFKA_BROKER_KIND")} | {
        "DATABASE_URL": fresh_database("restart"), "SAGA_STATE_DIR": str(state_dir),
        "SAGA_API_PORT": str(port), "SAGA_JWT_SECRET": TEST_JWT_SECRET,
        "SAGA_PROFILE": "local"}
    settings = Settings(jwt_secret=TEST_JWT_SECRET)
    api = ApiClient(f"http://127.0.0.1:{port}", issue_token(
        settings, f"restart-{uuid.uuid4().hex[:6]}", roles=[CUSTOMER_ROLE]))
    kind = session_broker_kind()
    with saga_up(env, state_dir, log) as state:
        assert state["embedded"] == {"database": False, "broker": kind}
        assert state["kafka_broker_kind"] == kind
        api.create_account()
        api.deposit("50.00")
        # Payments stops taking events: these orders stop half-way, their payment.requested
        # on the topic only (with Tansu: only in the broker's memory) when it stops.
        ControlClient(state["control"]["url"], state["control"]["token"]).pause("payments")
        stuck = [api.place_order([("MUG-001", 1)])["id"] for _ in range(3)]
        wait_for(lambda: all(api.order(o)["status"] == "PAYMENT_PROCESSING" for o in stuck),
                 timeout=30, interval=0.1, message="the orders to wait for payments")
        # And one just placed: wherever it is when the runtime stops.
        fresh = api.place_order([("MUG-001", 1)], payment_mode="confirm")["id"]
        first_cluster = KafkaServer(state_dir / "kafka").cluster_id
    with saga_up(env, state_dir, log) as state:
        if kind == "tansu":
            assert "re-published" in log.read_text()
        else:  # the same cluster, its topics and the groups' offsets kept
            assert "re-published" not in log.read_text()
            assert KafkaServer(state_dir / "kafka").cluster_id == first_cluster
        wait_for(lambda: api.order(fresh)["status"] == "AWAITING_PAYMENT", timeout=30,
                 interval=0.1, message="the fresh order to reach its payment step")
        api.pay(fresh)
        wait_for(lambda: all(api.order(o)["status"] == "COMPLETED" for o in [*stuck, fresh]),
                 timeout=60, interval=0.2, message="every order in flight to complete")
