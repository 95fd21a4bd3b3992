"""One event bench: the world, the shop, the chain alone and served, the stack's figures."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine

from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, issue_token
from tools import REPO_ROOT
from tools.bench.callgrind import require_valgrind
from tools.bench.commit import head_commit
from tools.bench.event import callgrind, instack
from tools.bench.event.chain import ChainResult, Mode, run_chain, tree_meter
from tools.bench.event.inprocess import InProcess
from tools.bench.event.served import Served
from tools.bench.event.world import World, customer_tokens, world
from tools.settings import EmbeddedBroker

SKUS = 8
CUSTOMERS = 20


@dataclass(frozen=True)
class EventBenchSpec:
    orders: int = 300
    warmup: int = 30
    alone: bool = True
    served: bool = True
    from_bench: Path | None = None
    bench_orders: int = 0  # > 0: run a `saga bench` of this many orders for the stack column
    broker: EmbeddedBroker = "embedded"
    # Instructions per event under callgrind (tools/bench/event/callgrind.py) instead of CPU
    # seconds, for the alone and served columns.
    callgrind: bool = False
    callgrind_dumps: Path | None = None  # keep the alone column's dumps here


def run_event_bench(spec: EventBenchSpec) -> dict[str, Any]:
    result: dict[str, Any] = {"spec": {k: str(v) if isinstance(v, Path) else v
                                       for k, v in spec.__dict__.items()},
                              "loadavg_before": [round(x, 2) for x in os.getloadavg()],
                              "commit": head_commit()}
    if spec.alone or spec.served:
        with world("kafka" if spec.broker == "kafka" else "tansu") as here:
            result |= _alone_and_served(here, spec)
    if spec.from_bench is not None:
        result["stack"] = instack.read(spec.from_bench)
    elif spec.bench_orders > 0:
        from tools.bench.stack.report import write
        from tools.bench.stack.run import BenchSpec, run_bench

        bench = run_bench(BenchSpec(orders=spec.bench_orders, bound=False, broker=spec.broker))
        path = write(bench, REPO_ROOT / "bench" / "results", plot=False)
        result["stack"] = instack.from_bench(bench, str(path))
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _alone_and_served(here: World, spec: EventBenchSpec) -> dict[str, Any]:
    settings = here.settings()
    engine = create_engine(settings.sqlalchemy_url())
    postgres, broker = tree_meter(here.postgres_pid), tree_meter(here.broker_pid)
    inprocess = InProcess(settings, here.state_dir / "inprocess.ndjson")
    out: dict[str, Any] = {}
    try:
        tokens, skus = _shop(inprocess, here, spec)

        def measure(mode: Mode) -> dict[str, Any]:
            run_chain(mode, engine, tokens=tokens, skus=skus, orders=spec.warmup,
                      postgres=postgres, broker=broker, seed=1)
            return _figures(run_chain(mode, engine, tokens=tokens, skus=skus,
                                      orders=spec.orders, postgres=postgres, broker=broker))

        if spec.callgrind:
            out |= _instructions(here, spec, engine, tokens, skus)
        elif spec.alone:
            out["alone"] = measure(inprocess)
        if spec.served and not spec.callgrind:
            served = Served(here.env(), here.state_dir / "logs", here.state_dir / "console.log")
            try:
                out["served"] = measure(served)
            finally:
                served.close()
    finally:
        inprocess.close()
        engine.dispose()
    return out


def _instructions(here: World, spec: EventBenchSpec, engine: Engine, tokens: list[str],
                  skus: list[str]) -> dict[str, Any]:
    """Instructions per event, alone and served (callgrind.py): `spec.orders` orders after
    `spec.warmup`."""
    out: dict[str, Any] = {}
    if spec.alone:
        child_spec = {"tokens": tokens, "skus": skus,
                      "log": str(here.state_dir / "callgrind-alone.ndjson")}
        out["alone_instructions"] = callgrind.alone(
            {**os.environ, **here.env()}, child_spec, orders=spec.orders, warmup=spec.warmup,
            dumps=spec.callgrind_dumps)
    if spec.served:
        require_valgrind()
        starter = callgrind.ValgrindStarter(cwd=REPO_ROOT, env=here.env())
        served = Served(here.env(), here.state_dir / "logs", here.state_dir / "console.log",
                        starter=starter, start_timeout=callgrind.START_TIMEOUT_S,
                        request_timeout=callgrind.START_TIMEOUT_S)
        counted = callgrind.Counted(served, lambda name: served.processes()[name], starter)
        nothing = tree_meter(None)
        try:
            run_chain(counted, engine, tokens=tokens, skus=skus, orders=spec.warmup,
                      postgres=nothing, broker=nothing, seed=1)
            counted.measuring = True
            run_chain(counted, engine, tokens=tokens, skus=skus, orders=spec.orders,
                      postgres=nothing, broker=nothing)
        finally:
            served.close()
            starter.close()
        out["served_instructions"] = counted.figures
    return out


def _shop(api: InProcess, here: World, spec: EventBenchSpec) -> tuple[list[str], list[str]]:
    """SKUs with stock for every order of both columns, customers with wallets."""
    settings = here.settings()
    admin = issue_token(settings, "bench-admin", roles=[CUSTOMER_ROLE, ADMIN_ROLE])
    skus = [f"BENCH-{i}" for i in range(SKUS)]
    for i, sku in enumerate(skus):
        api.request("POST", "/products", admin, {
            "sku": sku, "name": f"bench {sku}", "price": str(Decimal(i + 1)),
            "initial_stock": 1_000_000})
    tokens = customer_tokens(here, CUSTOMERS)
    per_order = Decimal(2 * 2 * SKUS)  # at most 2 lines of 2 units at the dearest price
    orders = 2 * (spec.orders + spec.warmup)
    deposit = per_order * (orders // CUSTOMERS + 2)
    for token in tokens:
        api.request("POST", "/accounts", token)
        api.request("POST", "/accounts/deposit", token, {"amount": str(deposit)})
    return tokens, skus


def _figures(chain: ChainResult) -> dict[str, Any]:
    total_pg = sum(cost.postgres_s for cost in chain.functions.values())
    total_broker = sum(cost.broker_s for cost in chain.functions.values())
    n = max(chain.orders, 1)
    return {
        "orders": chain.orders,
        "seconds": round(chain.seconds, 1),
        "functions": {name: cost.per_event_ms() for name, cost in sorted(chain.functions.items())},
        "by_event": {name: cost.per_event_ms() for name, cost in sorted(chain.by_type.items())},
        "postgres_ms_per_order": round(total_pg * 1000 / n, 2),
        "broker_ms_per_order": round(total_broker * 1000 / n, 2),
    }
