"""`saga load`: customers placing orders through the public API at a rate (open loop: order
i is due at t0 + i/R whatever the answers) or as fast as `concurrency` customers can
(--max, closed loop). Each order is POSTed with an Idempotency-Key and retried with it on
connection errors, 5xx and 429, so a POST whose answer was lost finds the order it created;
the follow-up (cancel, pay) is retried the same way. Submit times come from this clock,
terminal times from the tracker (the database), on the same machine."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import urllib3

from tools.apiclient import ApiError
from tools.loadgen.mix import EXPECTED, Scenario
from tools.loadgen.population import Customer, Population
from tools.loadgen.tracker import Tracker

T = TypeVar("T")
ADDRESS = "1 Load Street, Testville"
UNDELIVERABLE_ADDRESS = "9 Nowhere Road, UNDELIVERABLE"


@dataclass
class OrderRecord:
    index: int
    scenario: Scenario
    customer: str
    key: str
    submitted_at: float = 0.0  # unix time the first POST attempt started
    order_id: UUID | None = None
    attempts: int = 0
    error: str | None = None  # the POST never succeeded
    action_error: str | None = None  # the cancel / pay did not go through
    status: str | None = None
    reason: str | None = None
    terminal_at: float | None = None
    last_status: str | None = None  # of an order not settled when the load ended

    @property
    def latency_ms(self) -> float | None:
        if self.terminal_at is None:
            return None
        return (self.terminal_at - self.submitted_at) * 1000.0


@dataclass(frozen=True)
class LoadConfig:
    orders: int
    plan: list[Scenario]
    rate: float | None = None  # None: as fast as `concurrency` customers go
    concurrency: int = 16
    retry_for_s: float = 90.0  # how long one request keeps being retried (chaos)
    seed: int = 7


@dataclass
class LoadResult:
    records: list[OrderRecord]
    started_at: float
    submitted_until: float
    finished_at: float = 0.0
    unsettled: list[OrderRecord] = field(default_factory=list)

    def outcomes(self) -> dict[str, dict[str, int]]:
        table: dict[str, Counter[str]] = {}
        for r in self.records:
            key = r.status or ("POST failed" if r.error else f"pending {r.last_status}")
            if r.reason:
                key += f" {r.reason}"
            table.setdefault(r.scenario, Counter())[key] += 1
        return {s: dict(c) for s, c in sorted(table.items())}

    def unexpected(self) -> list[OrderRecord]:
        """Orders that settled otherwise than their scenario says (not an invariant: a
        happy order may find its SKU sold out; worth a look all the same)."""
        out = []
        for r in self.records:
            want = EXPECTED[r.scenario]
            if r.status is not None and (r.status, r.reason) != (want.status, want.reason):
                out.append(r)
        return out


class LoadRun:
    def __init__(self, population: Population, tracker: Tracker, config: LoadConfig) -> None:
        self.population = population
        self.tracker = tracker
        self.config = config
        self._random = random.Random(config.seed)
        self._by_id: dict[UUID, OrderRecord] = {}
        self._lock = threading.Lock()
        workers = config.concurrency if config.rate is None else max(config.concurrency, 32)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="customer")
        self._actions = ThreadPoolExecutor(max_workers=8, thread_name_prefix="action")
        self.records = [
            OrderRecord(i, s, population.customers[i % len(population.customers)].name,
                        str(uuid.uuid4()))
            for i, s in enumerate(config.plan[: config.orders])]
        self._customers = {c.name: c for c in population.customers}

    def submit_all(self, on_placed: Callable[[], None] = lambda: None) -> LoadResult:
        """Place every order (the follow-ups run on); returns when the last POST is done.
        `on_placed` is called (from the customers' threads) after each order's POST."""
        started = time.time()
        futures = []

        def place(record: OrderRecord) -> None:
            try:
                self._place(record)
            finally:
                on_placed()

        if self.config.rate is None:
            futures = [self._pool.submit(place, r) for r in self.records]
        else:
            t0 = time.monotonic()
            for r in self.records:
                delay = t0 + r.index / self.config.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # open-loop pacing
                futures.append(self._pool.submit(place, r))
        for f in futures:
            f.result()
        return LoadResult(self.records, started, time.time())

    def on_awaiting(self, order_id: UUID) -> None:
        """Tracker callback: a confirm-mode order waits for its payment."""
        with self._lock:
            record = self._by_id.get(order_id)
        if record is not None and record.scenario == "confirm":
            self._actions.submit(self._follow_up, record, "pay")

    def finish(self, result: LoadResult, *, wait_s: float, wait_timeouts: bool) -> LoadResult:
        """Wait for the orders to settle, then copy their outcomes into the records."""
        def done() -> bool:
            statuses = self.tracker.statuses()
            if wait_timeouts:
                return not statuses
            return all(self._record(o).scenario == "timeout" and s == "AWAITING_PAYMENT"
                       for o, s in statuses.items())

        self.tracker.wait(done, wait_s)
        self._actions.shutdown(wait=True)
        self._pool.shutdown(wait=True)
        settled, waiting = self.tracker.settled(), self.tracker.statuses()
        for r in self.records:
            if r.order_id is not None and (s := settled.get(r.order_id)) is not None:
                r.status, r.reason, r.terminal_at = s.status, s.reason, s.at
            elif r.order_id is not None:
                r.last_status = waiting.get(r.order_id)
        result.finished_at = time.time()
        # An unpaid order waiting within its window is where it should be, not unsettled.
        result.unsettled = [r for r in self.records if r.order_id and r.status is None and not (
            r.scenario == "timeout" and r.last_status == "AWAITING_PAYMENT")]
        return result

    # --- one customer's order -------------------------------------------------------------

    def _record(self, order_id: UUID) -> OrderRecord:
        with self._lock:
            return self._by_id[order_id]

    def _place(self, record: OrderRecord) -> None:
        want = EXPECTED[record.scenario]
        client = self._customers[record.customer].client
        items, address = self._basket(record.scenario)
        record.submitted_at = time.time()
        try:
            order = self._retrying(record, lambda: client.place_order(
                items, payment_mode=want.payment_mode, shipping_address=address,
                idempotency_key=record.key))
        except Exception as exc:
            record.error = _describe(exc)
            return
        record.order_id = UUID(order["id"])
        with self._lock:
            self._by_id[record.order_id] = record
        self.tracker.watch(record.order_id, notify_awaiting=record.scenario == "confirm")
        if record.scenario == "cancel":
            time.sleep(self._random.uniform(0, 0.2))  # race the reservation a little
            self._follow_up(record, "cancel")

    def _follow_up(self, record: OrderRecord, action: str) -> None:
        client = self._customers[record.customer].client
        assert record.order_id is not None
        order_id = str(record.order_id)
        call = (lambda: client.cancel(order_id)) if action == "cancel" else (
            lambda: client.pay(order_id))
        try:
            self._retrying(record, call)
        except Exception as exc:
            record.action_error = f"{action}: {_describe(exc)}"

    def _basket(self, scenario: Scenario) -> tuple[list[tuple[str, int]], str]:
        pop, rnd = self.population, self._random
        if scenario == "out_of_stock":  # all lines or none: the in-stock line is not kept
            return [(rnd.choice(pop.plenty), 1), (pop.none, 1)], ADDRESS
        if scenario == "insufficient_funds":
            return [(pop.dear, 1)], ADDRESS
        skus = rnd.sample(pop.plenty, rnd.randint(1, 2))
        items = [(sku, rnd.randint(1, 2)) for sku in skus]
        return items, UNDELIVERABLE_ADDRESS if scenario == "shipping_failed" else ADDRESS

    def _retrying(self, record: OrderRecord, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.config.retry_for_s
        pause = 0.05
        while True:
            record.attempts += 1
            try:
                return call()
            except (ApiError, urllib3.exceptions.HTTPError, OSError) as exc:
                retryable = not isinstance(exc, ApiError) or exc.status >= 500 or (
                    exc.status == 429)
                if not retryable or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)  # backoff between retries of one request
            pause = min(pause * 2, 2.0)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return str(exc)[:200]
    return f"{type(exc).__name__}: {str(exc)[:160]}"


def summary(result: LoadResult) -> dict[str, Any]:
    records = result.records
    return {
        "orders": len(records),
        "accepted": sum(1 for r in records if r.order_id is not None),
        "post_failed": sum(1 for r in records if r.error),
        "action_failed": sum(1 for r in records if r.action_error),
        "settled": sum(1 for r in records if r.status is not None),
        "unsettled": len(result.unsettled),
        "outcomes": result.outcomes(),
        "unexpected_outcomes": len(result.unexpected()),
        "retried_requests": sum(max(r.attempts - 1, 0) for r in records),
    }


__all__ = ["Customer", "LoadConfig", "LoadResult", "LoadRun", "OrderRecord", "summary"]
