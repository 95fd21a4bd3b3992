"""A function process killed (kill -9) while it handles an event loses nothing: the
KafkaSource gets no answer, retries, the runtime starts the function again (a cold start),
and the event is applied exactly once."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from common.products import add_product
from tests.e2e.conftest import LocalStack
from tests.e2e.test_ops_status import engine, log_docs, rows, wait_terminal
from tests.helpers import transaction_on, wait_for

pytestmark = pytest.mark.e2e


def test_killing_a_function_mid_event_loses_nothing(local_stack: LocalStack) -> None:
    stack = local_stack
    sku = f"KILL-{uuid.uuid4().hex[:8]}"
    db = engine(stack)
    try:
        with transaction_on(stack.settings) as tx:
            add_product(tx, sku, "kill test", "", Decimal("2.00"), 5)
        api = stack.client(f"kill-{uuid.uuid4().hex[:6]}")
        api.create_account()
        api.deposit("10.00")
        lock = db.connect()
        # Hold the stock row, so inventory's reserve waits inside its transaction (the
        # inbox row written, the event not yet handled) until the process is killed.
        transaction = lock.begin()
        lock.exec_driver_sql("SELECT * FROM inventory.stock WHERE sku = %(sku)s FOR UPDATE",
                             {"sku": sku})
        try:
            order = api.place_order([(sku, 2)])["id"]
            wait_for(lambda: rows(stack, "SELECT 1 FROM pg_stat_activity WHERE "
                                  "application_name = 'saga-inventory' AND "
                                  "wait_event_type = 'Lock'"), timeout=30, interval=0.05,
                     message="inventory to wait for the stock row")
            before = stack.state()["functions"]["inventory"]
            killed_at = datetime.now(UTC)
            os.killpg(before["pid"], signal.SIGKILL)  # the pod: gunicorn and its worker
        finally:
            transaction.rollback()
            lock.close()
        assert wait_terminal(api, [order])[order]["status"] == "COMPLETED"
        after = stack.state()["functions"]["inventory"]
        assert after["pid"] != before["pid"]
        # Applied once: one reservation, one reserve movement, one inbox row.
        assert rows(stack, "SELECT status FROM inventory.reservations WHERE order_id = :o",
                    o=order) == [("COMMITTED",)]
        assert rows(stack, "SELECT count(*) FROM inventory.stock_movements WHERE "
                    "order_id = :o AND kind = 'reserve'", o=order) == [(1,)]
        assert rows(stack, "SELECT on_hand, reserved FROM inventory.stock WHERE sku = :s",
                    s=sku) == [(3, 0)]
        assert rows(stack, "SELECT count(*) FROM messaging.inbox WHERE consumer = "
                    "'inventory' AND event_type = 'shop.order.created.v1' AND event_id IN "
                    "(SELECT id::text FROM messaging.outbox WHERE partition_key = :o)",
                    o=order) == [(1,)]
    finally:
        db.dispose()
    # The runtime got no answer, retried, and started inventory again to deliver it.
    retried = [d for d in log_docs(stack, "knative", killed_at)
               if d.get("labels.order_id") == order
               and d.get("event.action") == "knative.delivery.retry"]
    assert retried, "the killed delivery was not retried"
    assert any(d.get("event.action") == "saga.cold_start"
               for d in log_docs(stack, "inventory", killed_at))
