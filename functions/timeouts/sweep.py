"""Cancel orders whose payment window has passed; report sagas that stopped moving.

Expired orders are taken in batches with FOR UPDATE SKIP LOCKED, one transaction per
batch: two sweeps running at once (a slow run overlapping the next minute's ping) split
the work instead of waiting on each other, and an order that the API is moving to
PAYMENT_PROCESSING right now (it holds the row lock) is skipped, then re-checked under
the lock, so a paid-in-time order is never cancelled.
"""

from __future__ import annotations

import logging

from common.events.catalogue import TIMEOUTS
from common.logging import log_event
from common.order_state import Status, lock_order, transition
from common.pg import Tx
from common.resources import Resources
from common.tracing import continue_or_start
from common.unit_of_work import UnitOfWork
from functions.timeouts import sql

log = logging.getLogger("saga.timeouts")

BATCH = 100
MAX_BATCHES = 50  # bounds one run; the next ping carries on
STUCK_REPORT_LIMIT = 500


def sweep(resources: Resources) -> dict[str, int]:
    cancelled = 0
    for _ in range(MAX_BATCHES):
        batch_cancelled, locked = resources.run_unit_of_work(
            TIMEOUTS, _cancel_expired_batch)
        cancelled += batch_cancelled
        if locked < BATCH:
            break
    stuck = resources.transaction(lambda tx: report_stuck(tx, resources.settings.stuck_after_s))
    return {"cancelled": cancelled, "stuck": stuck}


def _cancel_expired_batch(uow: UnitOfWork) -> tuple[int, int]:
    """Cancel one batch of expired orders: (how many were cancelled, how many were locked)."""
    tx = uow.tx
    ids = [order_id for (order_id,) in tx.all(sql.LOCK_EXPIRED, {"limit": BATCH})]
    cancelled = 0
    for order_id in ids:
        order = lock_order(tx, order_id)  # already locked: this reads it as an Order
        if order is None or order.status != Status.AWAITING_PAYMENT:
            continue
        # The saga's own work on an order continues the order's trace (docs/observability.md,
        # "One order, its traces"); an order older than that column starts a trace of its own.
        trace = continue_or_start(order.traceparent)
        transition(tx, uow.outbox(trace), order, Status.CANCELLED, actor=TIMEOUTS,
                   reason="payment_timeout")
        cancelled += 1
    return cancelled, len(ids)


def report_stuck(tx: Tx, stuck_after_s: int) -> int:
    """One saga.stuck WARNING line per order that has not moved for stuck_after_s."""
    rows = tx.all(sql.STUCK, {"stuck_after_s": stuck_after_s, "limit": STUCK_REPORT_LIMIT})
    for order_id, status, updated_at, idle_s in rows:
        log_event(
            log, f"order {order_id} stuck in {status} since {updated_at.isoformat()}",
            action="saga.stuck", outcome="unknown", level=logging.WARNING,
            fields={"labels.order_id": str(order_id), "labels.order_status": status,
                    "labels.idle_s": str(idle_s)},
        )
    return len(rows)
