"""log_event's step line, to stdout (the bench sends it to /dev/null)."""

from __future__ import annotations

import logging

from common.logging import configure_logging, log_event

WARMUP = 200  # the per-field-set template, caches, lazy imports
FIELDS = {
    "cloudevents.id": "0b6f5c1e-6a0f-4b8e-9b0c-2f1f3a4b5c6d",
    "cloudevents.type": "shop.order.created.v1", "cloudevents.source": "/saga/api",
    "labels.order_id": "8c6c1c3e-1111-2222-3333-444455556666",
    "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "span.id": "00f067aa0ba902b7",
    "labels.saga_step": "reserve", "labels.order_status": "reserved",
    "event.duration": 3456789, "labels.emitted": "shop.stock.reserved.v1",
}


def step_line(n: int, total: int) -> None:
    configure_logging("payments")
    log = logging.getLogger("saga.step")
    for _ in range(WARMUP + n):
        log_event(log, "inventory handled shop.order.created.v1",
                  action="saga.step.completed", outcome="success", fields=FIELDS)
