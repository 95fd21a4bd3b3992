"""One retention bench: a world of its own (tools/bench/event/world.py), the shop, then for
each table size the tables grown (grow.py), the chain measured (measure.py) and, under
callgrind, its instructions (one child of tools/bench/event/callgrind.py, up across the
sizes: its imports under valgrind take minutes); at the largest size the sweep under load."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import create_engine

from common.table_stats import table_stats
from functions.retention.sweep import PAUSE_RATIO
from tools.bench.commit import head_commit
from tools.bench.event.callgrind import ChainChild
from tools.bench.event.chain import tree_meter
from tools.bench.event.run import EventBenchSpec, _shop
from tools.bench.event.world import world
from tools.bench.retention.grow import grow
from tools.bench.retention.indexcost import index_cost
from tools.bench.retention.measure import Timed, measure
from tools.bench.retention.sweepload import sweep_under_load
from tools.settings import EmbeddedBroker


@dataclass(frozen=True)
class RetentionBenchSpec:
    sizes: tuple[int, ...] = (0, 1_000_000, 10_000_000)
    orders: int = 200  # per size, for CPU, round trips and latency
    warmup: int = 20
    callgrind_orders: int = 10  # per size under callgrind; 0 leaves instructions out
    sweep_rows: int = 1_000_000  # rows the sweep deletes under load; 0 leaves it out
    baseline_orders: int = 100  # orders timed before the sweep, to compare with
    index_cost_rows: int = 20_000  # rows per run of the indexes' cost; 0 leaves it out
    broker: EmbeddedBroker = "embedded"


def run_retention_bench(spec: RetentionBenchSpec,
                        progress: Callable[[str], None] = print) -> dict[str, Any]:
    result: dict[str, Any] = {"spec": asdict(spec), "commit": head_commit(),
                              "loadavg_before": [round(x, 2) for x in os.getloadavg()],
                              "sizes": []}
    with world("kafka" if spec.broker == "kafka" else "tansu") as here:
        settings = here.settings()
        # The bench's own engine; the functions' pools are mode.resources'.
        engine = create_engine(settings.sqlalchemy_url())
        postgres, broker = tree_meter(here.postgres_pid), tree_meter(here.broker_pid)
        mode = Timed(settings, here.state_dir / "inprocess.ndjson")
        callgrind: ChainChild | None = None
        try:
            # Money and stock for every order any phase places (the sweep's: while it runs).
            tokens, skus = _shop(mode, here, EventBenchSpec(orders=20_000, warmup=0))
            if spec.index_cost_rows:
                progress("what migration 0003's indexes cost the hot path's writes")
                result["index_cost"] = index_cost(engine, rows=spec.index_cost_rows)
            if spec.callgrind_orders:
                progress("starting the callgrind child (its imports take a few minutes)")
                callgrind = ChainChild(here.env(), {
                    "tokens": tokens, "skus": skus,
                    "log": str(here.state_dir / "callgrind.ndjson")})
            for size in spec.sizes:
                progress(f"growing the tables to {size:,} rows each")
                took = grow(engine, size, progress)
                progress(f"measuring {spec.orders} orders at {size:,} rows")
                at: dict[str, Any] = {"rows": size, "grow_s": took, "alone": measure(
                    mode, engine, tokens=tokens, skus=skus, orders=spec.orders,
                    warmup=spec.warmup, postgres=postgres, broker=broker)}
                if callgrind is not None:
                    progress(f"callgrind: {spec.callgrind_orders} orders at {size:,} rows")
                    at["instructions"] = callgrind.run(spec.callgrind_orders, warmup=2)
                with engine.connect() as conn:
                    at["tables"] = [s.as_dict() for s in table_stats(conn)]
                result["sizes"].append(at)
            # At full speed, then as deployed (each a fresh backlog of the oldest rows).
            result["sweeps"] = []
            for ratio in (0.0, PAUSE_RATIO) if spec.sweep_rows else ():
                progress(f"the sweep deleting {spec.sweep_rows:,} rows under load, pause "
                         f"ratio {ratio:g}")
                result["sweeps"].append(sweep_under_load(
                    mode, engine, here.env(), rows=spec.sweep_rows, pause_ratio=ratio,
                    tokens=tokens, skus=skus, baseline_orders=spec.baseline_orders,
                    postgres=postgres, broker=broker))
        finally:
            if callgrind is not None:
                callgrind.close()
            mode.close()
            engine.dispose()
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result
