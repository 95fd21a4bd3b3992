"""Follows a run's orders in the database: when each reached a terminal status (its terminal
history row's time) and when a confirm-mode order began to wait for payment. Reading the
database, not polling GET /orders/{id}, keeps the measurement off the API it measures.
Each interval reads only the history rows written since the last (by identity id), so its
cost follows the saga's rate, not the backlog (docs/benchmarks.md); ids are taken at
INSERT and visible at COMMIT, so each read looks back over a window of ids, and a full
lookup of the pending orders every few seconds is the safety net."""

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
_NEW_HISTORY = text("""
    SELECT id, order_id, to_status, reason, at FROM orders.order_status_history
    WHERE id > :after AND to_status IN ('AWAITING_PAYMENT', 'COMPLETED', 'CANCELLED')
    ORDER BY id LIMIT 20000
""")
_CHUNK = 2000
_LOOK_BACK = 200  # history ids: ~0.5 s of a fast run, far more than one commit takes
_FULL_EVERY_S = 5.0


@dataclass(frozen=True)
class Settled:
    status: str
    reason: str | None
    at: float  # unix time


@dataclass(frozen=True)
class _Change:
    id: UUID
    status: str
    reason: str | None
    terminal_at: datetime


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
        self._after = 0  # history ids at or below this were read (minus the look-back)
        self._seen: set[int] = set()  # history ids read within the look-back window
        self._last_full = 0.0
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

    def settled_count(self) -> int:
        with self._lock:
            return len(self._settled)

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
        """What changed since the last call; every few seconds, every pending order."""
        now = time.monotonic()
        if now - self._last_full >= _FULL_EVERY_S:
            self._last_full = now
            self._poll_pending()
        self._poll_history()

    def _poll_pending(self) -> None:
        with self._lock:
            ids = list(self._pending)
        for start in range(0, len(ids), _CHUNK):
            with self._engine.connect() as conn:
                rows = conn.execute(_POLL, {"ids": ids[start:start + _CHUNK]}).all()
            self._absorb(rows)

    def _poll_history(self) -> None:
        with self._engine.connect() as conn:
            rows = conn.execute(_NEW_HISTORY,
                                {"after": max(self._after - _LOOK_BACK, 0)}).all()
        fresh = [r for r in rows if r.id not in self._seen]
        if not rows:
            return
        self._after = max(self._after, rows[-1].id)
        self._seen = {i for i in self._seen if i > self._after - _LOOK_BACK}
        self._seen.update(r.id for r in fresh)
        with self._lock:
            fresh = [r for r in fresh if r.order_id in self._pending]
        # As rows of _POLL: an order's latest change, with its terminal time if it has one.
        self._absorb([_Change(r.order_id, r.to_status, r.reason, r.at) for r in fresh])

    def _absorb(self, rows: Sequence[Row[Any] | _Change]) -> None:
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
