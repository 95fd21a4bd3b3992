"""One load, start to finish: the run's shop (population), the tracker, the orders, the wait
for them to settle. Shared by `saga load`, `saga bench`, `saga chaos` and the e2e tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import urllib3

from tools.apiclient import ApiClient
from tools.loadgen import metrics
from tools.loadgen.check import engine_for
from tools.loadgen.load import LoadConfig, LoadResult, LoadRun, summary
from tools.loadgen.mix import Scenario, assign, parse_mix
from tools.loadgen.population import Population, new_run_id, prepare
from tools.loadgen.tracker import Tracker
from tools.progress import Progress


@dataclass(frozen=True)
class LoadSpec:
    orders: int
    rate: float | None = None  # None: --max
    mix: str = "happy=1"
    customers: int = 20
    concurrency: int = 16
    wait_s: float = 120.0
    wait_timeouts: bool = False  # also wait for payment_timeout cancellations
    retry_for_s: float = 90.0
    seed: int = 7
    run_id: str = field(default_factory=new_run_id)

    def plan(self) -> list[Scenario]:
        return assign(self.orders, parse_mix(self.mix), self.seed)


@dataclass
class LoadOutcome:
    spec: LoadSpec
    population: Population
    result: LoadResult

    def figures(self) -> dict[str, Any]:
        records = self.result.records
        return summary(self.result) | metrics.latency_figures(records) | {
            "run_id": self.spec.run_id,
            "orders_per_s": round(metrics.throughput(records), 2),
            "submit_rate_per_s": round(metrics.submit_rate(self.result), 2),
            "duration_s": round(self.result.finished_at - self.result.started_at, 2),
        }


class Driver:
    """Set up (the run's shop), then `go()`: the orders, and the wait for them to settle.
    Meanwhile faults may run. `progress` shows each phase; `phase` names the run in it."""

    def __init__(self, api_url: str, database_url: str, admin_token: str,
                 spec: LoadSpec, *, progress: Progress | None = None, phase: str = "") -> None:
        self.spec = spec
        self.progress = progress or Progress.silent()
        self._phase = f"{phase}: " if phase else ""
        pool = urllib3.PoolManager(maxsize=max(spec.concurrency, 32) + 16, retries=False)
        self.api = ApiClient(api_url, timeout=30.0, pool=pool)
        self.engine = engine_for(database_url)
        with self.progress.task(f"{self._phase}customers set up", total=spec.customers,
                                unit="customers") as ready:
            self.population = prepare(self.api, admin_token, run_id=spec.run_id,
                                      customers=spec.customers, orders=spec.orders,
                                      on_customer=ready.advance)
        config = LoadConfig(orders=spec.orders, plan=spec.plan(), rate=spec.rate,
                            concurrency=spec.concurrency, retry_for_s=spec.retry_for_s,
                            seed=spec.seed)
        self.tracker = Tracker(self.engine)
        self.run = LoadRun(self.population, self.tracker, config)
        self.tracker.on_awaiting = self.run.on_awaiting

    def go(self) -> LoadOutcome:
        self.tracker.start()
        orders = self.spec.orders
        try:
            with self.progress.task(f"{self._phase}orders settled", total=orders,
                                    unit="orders", follow=self.tracker.settled_count):
                with self.progress.task(f"{self._phase}orders placed", total=orders,
                                        unit="orders") as placed:
                    result = self.run.submit_all(on_placed=placed.advance)
                result = self.run.finish(result, wait_s=self.spec.wait_s,
                                         wait_timeouts=self.spec.wait_timeouts)
        finally:
            self.tracker.stop()
        return LoadOutcome(self.spec, self.population, result)

    def close(self) -> None:
        self.engine.dispose()


def run_load(api_url: str, database_url: str, admin_token: str, spec: LoadSpec, *,
             progress: Progress | None = None, phase: str = "") -> LoadOutcome:
    driver = Driver(api_url, database_url, admin_token, spec, progress=progress, phase=phase)
    try:
        return driver.go()
    finally:
        driver.close()
