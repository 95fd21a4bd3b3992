"""The reduced proof that runs in CI: 300 orders with the full outcome mix through the
public API of a real `saga up`, one function SIGKILLed mid-load, and then `saga check` on
the run: every order where its scenario says, nothing lost, nothing doubled.

The session's stack has the default payment window (300 s), so the `timeout` orders are
expected to be still AWAITING_PAYMENT within their window (which the check accepts); the
cancellation itself is covered by the chaos tool (`task chaos`, 20 s window).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from sqlalchemy import text

from tests.e2e.conftest import LocalStack
from tests.helpers import wait_for
from tools.loadgen.check import Options, Scope, engine_for, run_check, settle
from tools.loadgen.driver import Driver, LoadSpec
from tools.loadgen.mix import EXPECTED, FULL_MIX
from tools.loadgen.stack import function_pids

pytestmark = pytest.mark.e2e

ORDERS = 300
KILL_AFTER = 100  # accepted orders, so the kill lands while events are in flight
VICTIM = "inventory"  # busy on every order (reserve, commit, release)


def test_300_orders_with_the_full_mix_and_one_kill_pass_saga_check(
    local_stack: LocalStack,
) -> None:
    assert local_stack.settings.database_url is not None
    database_url = local_stack.settings.database_url.get_secret_value()
    spec = LoadSpec(orders=ORDERS, mix=FULL_MIX, customers=15, concurrency=8, wait_s=150,
                    retry_for_s=60)
    driver = Driver(local_stack.api_url, database_url,
                    local_stack.token("loadgen-admin", admin=True), spec)
    killed: dict[str, int] = {}

    def kill_mid_load() -> None:
        wait_for(lambda: sum(r.order_id is not None for r in driver.run.records) >= KILL_AFTER,
                 timeout=120, message=f"{KILL_AFTER} accepted orders")
        pid = wait_for(lambda: function_pids(local_stack.state_dir).get(VICTIM), timeout=30,
                       message=f"{VICTIM} running")
        os.killpg(pid, signal.SIGKILL)  # its own process group: master and worker
        killed[VICTIM] = pid

    killer = threading.Thread(target=kill_mid_load, daemon=True)
    started = time.monotonic()
    killer.start()
    try:
        outcome = driver.go()
    finally:
        killer.join(5)
        driver.close()
    assert killed, "the kill did not happen"

    records = outcome.result.records
    assert [r.error for r in records if r.error] == []
    assert [r.action_error for r in records if r.action_error] == []
    assert outcome.result.unsettled == [], [(r.scenario, r.last_status)
                                            for r in outcome.result.unsettled]
    for r in records:
        want = EXPECTED[r.scenario]
        if r.scenario == "timeout":  # within its 300 s window: still waiting
            assert r.last_status == "AWAITING_PAYMENT" or r.reason == "payment_timeout"
        else:
            assert (r.status, r.reason) == (want.status, want.reason), r
    # The killed function came back (a cold start on its next event) under another pid.
    restarted = function_pids(local_stack.state_dir).get(VICTIM)
    assert restarted != killed[VICTIM]

    engine = engine_for(database_url)
    try:
        prefix = outcome.population.customer_prefix
        report = settle(lambda: run_check(engine, Scope(customer_prefix=prefix), Options()),
                        timeout_s=60)
        with engine.connect() as conn:
            stored = int(conn.execute(text(
                "SELECT count(*) FROM orders.orders WHERE customer_id LIKE :p"),
                {"p": prefix + "%"}).scalar_one())
    finally:
        engine.dispose()
    assert report.ok, report.summary()
    assert report.checked["orders"] == ORDERS
    assert stored == ORDERS  # no POST retry after the kill created a second order
    print(f"300 orders + 1 kill: {outcome.figures()['orders_per_s']} orders/s, "
          f"{time.monotonic() - started:.0f} s, check attempts {report.attempts}")
