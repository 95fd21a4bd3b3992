"""`saga bench`: one measured run of the whole local stack. PostgreSQL (ours: it outlives the
stack) -> `saga up` on it -> warm-up orders (every function cold-started, not measured) ->
the load, with CPU/RSS sampling -> every order settled -> `saga check` on the run -> the
stack stopped -> the PostgreSQL bound on the same server, the machine otherwise quiet ->
JSON + PNG. With `attach` it measures the stack running in SAGA_STATE_DIR instead, the
bound on that stack's server while the stack idles."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from tools.bench.commit import head_commit
from tools.bench.stack import logstats, pgbound
from tools.bench.stack.procstats import ProcessSampler, largest_function
from tools.loadgen.check import Options, Scope, engine_for, run_check, settle
from tools.loadgen.database import BenchDatabase
from tools.loadgen.driver import Driver, LoadOutcome, LoadSpec, run_load
from tools.loadgen.metrics import timeline
from tools.loadgen.stack import LocalStack, roots
from tools.loadgen.target import Target
from tools.progress import Progress
from tools.settings import EmbeddedBroker


@dataclass(frozen=True)
class BenchSpec:
    orders: int = 2000
    rate: float | None = None
    mix: str = "happy=1"
    customers: int = 50
    concurrency: int = 16
    warmup: int = 60
    bound: bool = True
    bound_seconds: float = 8.0
    settle_s: float = 180.0
    env: tuple[tuple[str, str], ...] = ()  # extra environment for `saga up`
    broker: EmbeddedBroker | None = None  # its broker (None: SAGA_BROKER, else Tansu)


def run_bench(spec: BenchSpec, *, attach: Target | None = None,
              progress: Progress | None = None) -> dict[str, Any]:
    progress = progress or Progress.silent()
    before = _machine()
    if attach is not None:
        result = _measure(spec, attach, extra_roots={}, progress=progress)
        if spec.bound:
            result |= _bound(attach.database_url, spec, note="stack running (attached)",
                             progress=progress)
        return _finish(result, spec, before)
    with ExitStack() as stack:
        with progress.task("starting PostgreSQL"):
            database = stack.enter_context(BenchDatabase())
        env = {"DATABASE_URL": database.url, **dict(spec.env)}
        with LocalStack(env=env, broker=spec.broker, progress=progress) as local:
            extra = {"postgres": database.pid} if database.pid else {}
            result = _measure(spec, local.target(), extra_roots=extra, progress=progress)
        if spec.bound:
            result |= _bound(database.url, spec, note="stack stopped", progress=progress)
    return _finish(result, spec, before)


def _measure(spec: BenchSpec, target: Target, *, extra_roots: dict[str, int],
             progress: Progress) -> dict[str, Any]:
    admin = target.admin_token()
    if spec.warmup:
        run_load(target.api_url, target.database_url, admin,
                 LoadSpec(orders=spec.warmup, rate=None, mix="happy=1", customers=5,
                          concurrency=4, wait_s=60), progress=progress, phase="warm-up")
    load = LoadSpec(orders=spec.orders, rate=spec.rate, mix=spec.mix, customers=spec.customers,
                    concurrency=spec.concurrency, wait_s=spec.settle_s)
    driver = Driver(target.api_url, target.database_url, admin, load,  # customers set up
                    progress=progress)
    sampler = ProcessSampler(lambda: roots(target.state_dir) | extra_roots)
    delivered_before = _delivered(target)
    started = time.time()
    cpu = _CpuWindow()
    sampler.start()
    try:
        outcome = driver.go()
    finally:
        driver.close()
    ended = time.time()
    processes = sampler.stop()
    cpu_figures = cpu.close(processes)
    time.sleep(2.5)  # the runtime writes its delivery counters every 2 s
    events = _delivered(target) - delivered_before
    engine = engine_for(target.database_url)
    try:
        scope = Scope(customer_prefix=outcome.population.customer_prefix)
        with progress.task("saga check on the run (until it converges, 60 s at most)"):
            report = settle(lambda: run_check(engine, scope, Options()), timeout_s=60)
    finally:
        engine.dispose()
    figures = outcome.figures()
    accepted = max(figures["accepted"], 1)
    state = target.state()
    return figures | {
        # Which broker the stack ran on, and what it cost (also under "processes").
        "broker": {"kind": state.get("kafka_broker_kind"),
                   "embedded": (state.get("embedded") or {}).get("broker")}
        | processes.get("broker", {}),
        "violations": sum(v.count for v in report.violations),
        "check": report.as_dict(),
        "peak_rss_mb": largest_function(processes, "peak_rss_mb"),
        # What the largest function holds alone: RSS also counts the libraries' pages and
        # the zygote's, which every function shares (docs/benchmarks.md, memory).
        "largest_uss_mb": largest_function(processes, "uss_mb_at_end"),
        "processes": processes,
        "functions": logstats.function_stats(target.state_dir / "logs", started, ended),
        "events_delivered": events,
        "events_per_order": round(events / accepted, 2),
        "cpu": cpu_figures,
        "timeline": timeline(outcome.result.records),
        "latencies_ms": _latencies(outcome),
    }


def _bound(database_url: str, spec: BenchSpec, *, note: str,
           progress: Progress) -> dict[str, Any]:
    bound = pgbound.measure(database_url, customers=spec.customers,
                            seconds=spec.bound_seconds, progress=progress)
    return bound.as_dict() | {"pg_bound_conditions": note}


def _finish(result: dict[str, Any], spec: BenchSpec, before: dict[str, Any]) -> dict[str, Any]:
    bound = result.get("pg_bound_orders_per_s")
    result["bound_fraction"] = round(result["orders_per_s"] / bound, 3) if bound else None
    result["spec"] = asdict(spec)
    result["machine"] = before | {"loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    result["commit"] = head_commit()
    result["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return result


class _CpuWindow:
    """Where the machine's CPU went during the load: the stack, this load generator, and
    everything else (other people's work on a shared machine)."""

    def __init__(self) -> None:
        self._machine = psutil.cpu_times()
        self._own = psutil.Process().cpu_times()
        self._started = time.monotonic()

    def close(self, processes: dict[str, dict[str, Any]]) -> dict[str, float]:
        now, own = psutil.cpu_times(), psutil.Process().cpu_times()
        busy = (sum(now) - now.idle - getattr(now, "iowait", 0.0)) - (
            sum(self._machine) - self._machine.idle - getattr(self._machine, "iowait", 0.0))
        loadgen = (own.user + own.system) - (self._own.user + self._own.system)
        stack = sum(p["cpu_s"] for p in processes.values())
        window = time.monotonic() - self._started
        return {"window_s": round(window, 1), "machine_busy_s": round(busy, 1),
                "machine_capacity_s": round(window * (psutil.cpu_count() or 1), 1),
                "stack_s": round(stack, 1), "loadgen_s": round(loadgen, 1),
                "other_s": round(max(busy - stack - loadgen, 0.0), 1)}


def _delivered(target: Target) -> int:
    sources = target.state().get("sources") or {}
    return sum(int(s.get("delivered", 0)) for s in sources.values())


def _latencies(outcome: LoadOutcome) -> list[float]:
    return [round(r.latency_ms, 1) for r in outcome.result.records
            if r.latency_ms is not None and r.scenario != "timeout"]


def _machine() -> dict[str, Any]:
    return {"cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30),
            "loadavg_before": [round(x, 2) for x in os.getloadavg()],
            "cpu_model": _cpu_model()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
