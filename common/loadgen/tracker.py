"""Follows a run's orders in the database: when each reached a terminal status (the time of
its terminal history row) and when a confirm-mode order started waiting for its payment.

Reading the database rather than polling GET /orders/{id} keeps the measurement from
loading the API it measures, and gives the terminal time as the saga recorded it instead
of "some poll after it". One query per interval for all pending orders, by primary key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, Row, text

_POLL = text("""
    SELECT o.id, o.status, o.reason, h.at AS terminal_at
    FROM orders.orders o
    LEFT JOIN LATERAL (
        SELECT at FROM orders.order_status_history
        WHERE order_id = o.id AND to_status IN ('COMPLETED', 'CANCELLED')
        ORDER BY id DESC LIMIT 1) h ON true
    WHERE o.id = ANY(:ids)
""")
_CHUNK = 2000


@dataclass(frozen=True)
class Settled:
    status: str
    reason: str | None
    at: float  # unix time


class Tracker:
    """Thread-safe. watch() an order; `on_awaiting` is called once (from the tracker's
    thread) for a watched order seen in AWAITING_PAYMENT with `notify_awaiting`."""

    def __init__(self, engine: Engine, *, interval_s: float = 0.1,
                 on_awaiting: Callable[[UUID], None] | None = None) -> None:
        self._engine = engine
        self._interval = interval_s
        self.on_awaiting = on_awaiting
        self._lock = threading.Lock()
        self._pending: set[UUID] = set()
        self._awaiting_wanted: set[UUID] = set()
        self._settled: dict[UUID, Settled] = {}
        self._last_status: dict[UUID, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracker", daemon=True)
        self.errors = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def watch(self, order_id: UUID, *, notify_awaiting: bool = False) -> None:
        with self._lock:
            self._pending.add(order_id)
            if notify_awaiting:
                self._awaiting_wanted.add(order_id)

    def settled(self) -> dict[UUID, Settled]:
        with self._lock:
            return dict(self._settled)

    def statuses(self) -> dict[UUID, str]:
        """The last status seen of every order still pending."""
        with self._lock:
            return {o: self._last_status.get(o, "CREATED") for o in self._pending}

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def wait(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)  # bounded wait on the tracker's own progress
        return True

    def poll_once(self) -> None:
        with self._lock:
            ids = list(self._pending)
        for start in range(0, len(ids), _CHUNK):
            with self._engine.connect() as conn:
                rows = conn.execute(_POLL, {"ids": ids[start:start + _CHUNK]}).all()
            self._absorb(rows)

    def _absorb(self, rows: Sequence[Row[Any]]) -> None:
        notify: list[UUID] = []
        with self._lock:
            for row in rows:
                order_id, status = row.id, row.status
                self._last_status[order_id] = status
                terminal_at: datetime | None = row.terminal_at
                if status in ("COMPLETED", "CANCELLED") and terminal_at is not None:
                    self._settled[order_id] = Settled(status, row.reason, terminal_at.timestamp())
                    self._pending.discard(order_id)
                    self._awaiting_wanted.discard(order_id)
                    self._last_status.pop(order_id, None)
                elif status == "AWAITING_PAYMENT" and order_id in self._awaiting_wanted:
                    self._awaiting_wanted.discard(order_id)
                    notify.append(order_id)
        if self.on_awaiting is not None:
            for order_id in notify:
                self.on_awaiting(order_id)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll_once()
            except Exception:  # the database restarting under chaos: try again next tick
                self.errors += 1
