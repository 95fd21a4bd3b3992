"""`saga chaos`: a load under faults, then the invariants: nothing lost, nothing doubled.
PostgreSQL (ours, restartable) and a broker (Tansu, or Apache Kafka with broker="kafka")
behind a cuttable proxy -> `saga up` on them (a short payment window) -> the full mix while
a function is SIGKILLed every `kill_every_s`, PostgreSQL restarts once and the broker is
cut once -> every order settled -> `saga check` (waiting for convergence), and every
accepted order exists exactly once. What the run wrote lives under one temporary
directory, removed after a clean run and kept after a failed one (its path is in the result)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tools.loadgen.check import Options, Scope, engine_for, run_check, settle
from tools.loadgen.database import BenchDatabase
from tools.loadgen.driver import Driver, LoadSpec
from tools.loadgen.faults import ChaosBroker, FaultLog, Killer
from tools.loadgen.mix import FULL_MIX
from tools.loadgen.stack import LocalStack, function_pids
from tools.progress import Progress
from tools.settings import EmbeddedBroker, KafkaBrokerKind


@dataclass(frozen=True)
class ChaosSpec:
    orders: int = 5000
    rate: float | None = None
    mix: str = FULL_MIX
    customers: int = 50
    concurrency: int = 8
    kill_every_s: float = 2.0
    max_kills: int | None = None
    pg_restart_at_s: float | None = 30.0
    broker_cut_at_s: float | None = 60.0
    broker_cut_s: float = 5.0
    payment_window_s: int = 20
    settle_s: float = 1200.0
    broker: EmbeddedBroker = "embedded"


def run_chaos(spec: ChaosSpec, *, work_root: Path | None = None,
              progress: Progress | None = None, phase: str = "") -> dict[str, Any]:
    """One run; its directory is made in `work_root` (default: the system's temp dir).
    `progress` shows each phase, named `phase` (run 2/3, say)."""
    work = Path(tempfile.mkdtemp(prefix="saga-chaos-", dir=work_root))
    try:
        result = _run_in(work, spec, progress or Progress.silent(), phase)
    except BaseException:
        print(f"saga chaos: the run failed; its directory is kept for tracing: {work}",
              file=sys.stderr)
        raise
    if result["lost"] or result["doubled"] or result["violations"]:
        result["kept"] = str(work)  # PostgreSQL's data, the stack's state and logs
    else:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _run_in(work: Path, spec: ChaosSpec, progress: Progress, phase: str) -> dict[str, Any]:
    log = FaultLog()
    named = f"{phase}: " if phase else ""
    kind: KafkaBrokerKind = "kafka" if spec.broker == "kafka" else "tansu"
    with ExitStack() as running:
        with progress.task(f"{named}starting PostgreSQL and the broker ({kind})"):
            database = running.enter_context(BenchDatabase(base_dir=work / "postgres"))
            broker = running.enter_context(ChaosBroker(work / "broker", kind))
        env = {"DATABASE_URL": database.url, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
               "SAGA_KAFKA_BROKER_KIND": kind,
               "SAGA_PAYMENT_WINDOW_S": str(spec.payment_window_s)}
        stack = running.enter_context(
            LocalStack(env=env, state_dir=work / "stack", progress=progress, phase=phase))
        target = stack.target()
        load = LoadSpec(orders=spec.orders, rate=spec.rate, mix=spec.mix,
                        customers=spec.customers, concurrency=spec.concurrency,
                        wait_s=spec.settle_s, wait_timeouts=True, retry_for_s=180)
        driver = Driver(target.api_url, target.database_url, target.admin_token(), load,
                        progress=progress, phase=phase)
        killer = Killer(lambda: function_pids(target.state_dir), log,
                        every_s=spec.kill_every_s)
        done = threading.Event()
        plan = threading.Thread(target=_scheduled, daemon=True,
                                args=(spec, database, broker, killer, log, done))
        log.started = time.monotonic()  # fault times count from the load's start
        log.add(f"load of {spec.orders} orders starts")
        plan.start()
        try:
            with progress.task(f"{named}functions killed", unit="kills",
                               follow=lambda: sum(killer.kills.copy().values())):
                outcome = driver.go()
        finally:
            done.set()
            plan.join(60)
        log.add("every order settled; faults stop")
        sources = (target.state().get("sources") or {}).values()
        engine = engine_for(target.database_url)
        try:
            scope = Scope(customer_prefix=outcome.population.customer_prefix)
            with progress.task(f"{named}saga check on the run (until it converges, "
                               "300 s at most)"):
                report = settle(lambda: run_check(engine, scope, Options()), timeout_s=300)
            stored = _orders_stored(engine, outcome.population.customer_prefix)
        finally:
            engine.dispose()
            driver.close()
    figures = outcome.figures()
    accepted = figures["accepted"]
    return {
        "broker": kind, "orders": spec.orders, "accepted": accepted, "settled": figures["settled"],
        "unsettled": figures["unsettled"], "post_failed": figures["post_failed"],
        "stored_orders": stored, "doubled": max(stored - accepted, 0),
        "lost": figures["unsettled"] + figures["post_failed"],
        "violations": sum(v.count for v in report.violations), "check": report.as_dict(),
        "kills": killer.kills, "faults": log.as_list(), "outcomes": figures["outcomes"],
        "orders_per_s": figures["orders_per_s"], "duration_s": figures["duration_s"],
        "retried_requests": figures["retried_requests"], "spec": asdict(spec),
        "run_id": figures["run_id"],
        # How often the KafkaSource emulation read a partition again because a fetch had
        # skipped a record (Tansu only: tools/runtime/eventing/offset_gaps.py).
        "refetched": sum(int(source.get("refetched") or 0) for source in sources),
    }


def _scheduled(spec: ChaosSpec, database: BenchDatabase, broker: ChaosBroker, killer: Killer,
               log: FaultLog, done: threading.Event) -> None:
    """Kills every kill_every_s (up to max_kills), and the one-off faults at their times,
    until the load has settled."""
    started = time.monotonic()
    once = {"pg": spec.pg_restart_at_s, "broker": spec.broker_cut_at_s}
    kills = 0
    next_kill = started + spec.kill_every_s
    while not done.wait(0.2):
        now = time.monotonic()
        if now >= next_kill and (spec.max_kills is None or kills < spec.max_kills):
            if killer.kill_one() is not None:
                kills += 1
            next_kill = now + spec.kill_every_s
        for fault, at in list(once.items()):
            if at is not None and now - started >= at:
                once[fault] = None
                if fault == "pg":
                    log.add("PostgreSQL restart begins")
                    log.add(database.restart())
                else:
                    broker.cut(spec.broker_cut_s, log)


def _orders_stored(engine: Any, prefix: str) -> int:
    like = prefix.replace("_", "\\_").replace("%", "\\%") + "%"
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM orders.orders WHERE customer_id LIKE :p"), {"p": like}
        ).scalar_one())
