"""The step alone and POST /orders at one table size: the event bench's in-process chain
(tools/bench/event), each delivery timed, and its database round trips counted (statements,
BEGINs and COMMITs: psycopg sends BEGIN as a round trip of its own) by SQLAlchemy's engine
events, attributed to the function whose window is open."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from typing import Any

from cloudevents.http import CloudEvent
from sqlalchemy import Engine, event

from common.events import catalogue as c
from tools.bench.event.chain import ChainResult, Meter, run_chain
from tools.bench.event.inprocess import InProcess


class Timed(InProcess):
    """InProcess that times each delivery and POST, and counts round trips per function."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.round_trips: dict[str, int] = defaultdict(int)
        self._current: str | None = None
        event.listen(Engine, "before_cursor_execute", self._trip)
        event.listen(Engine, "begin", self._trip)
        event.listen(Engine, "commit", self._trip)
        event.listen(Engine, "rollback", self._trip)

    def _trip(self, *_: Any) -> None:
        if self._current is not None:
            self.round_trips[self._current] += 1

    def reset(self) -> None:
        self.latencies.clear()
        self.round_trips.clear()

    def begin(self, function: str) -> None:
        super().begin(function)
        self._current = function

    def settle(self) -> None:
        super().settle()
        self._current = None

    def place(self, token: str, body: dict[str, Any], key: str) -> str:
        started = time.perf_counter()
        order_id = super().place(token, body, key)
        self.latencies[c.API].append(time.perf_counter() - started)
        return order_id

    def deliver(self, consumer: str, event: CloudEvent) -> None:
        started = time.perf_counter()
        super().deliver(consumer, event)
        self.latencies[consumer].append(time.perf_counter() - started)

    def close(self) -> None:
        for name in ("before_cursor_execute", "begin", "commit", "rollback"):
            event.remove(Engine, name, self._trip)
        super().close()


def figures(mode: Timed, chain: ChainResult) -> dict[str, Any]:
    """Per function: events, CPU ms, PostgreSQL CPU ms, round trips and wall ms per event."""
    out: dict[str, Any] = {}
    for name, cost in sorted(chain.functions.items()):
        waits = sorted(mode.latencies[name])
        events = max(cost.events, 1)
        out[name] = cost.per_event_ms() | {
            "round_trips_per_event": round(mode.round_trips[name] / events, 2),
            "wall_ms_p50": _ms(statistics.median(waits)) if waits else None,
            "wall_ms_p99": _ms(_quantile(waits, 0.99)) if waits else None,
        }
    return out


def measure(mode: Timed, engine: Engine, *, tokens: list[str], skus: list[str], orders: int,
            warmup: int, postgres: Meter, broker: Meter) -> dict[str, Any]:
    run_chain(mode, engine, tokens=tokens, skus=skus, orders=warmup, postgres=postgres,
              broker=broker, seed=1)
    mode.reset()
    chain = run_chain(mode, engine, tokens=tokens, skus=skus, orders=orders,
                      postgres=postgres, broker=broker)
    return {"orders": orders, "seconds": round(chain.seconds, 1),
            "functions": figures(mode, chain)}


def latency_summary(samples: list[float]) -> dict[str, float | int]:
    ordered = sorted(samples)
    if not ordered:
        return {"events": 0}
    return {"events": len(ordered), "p50_ms": _ms(statistics.median(ordered)),
            "p95_ms": _ms(_quantile(ordered, 0.95)), "p99_ms": _ms(_quantile(ordered, 0.99)),
            "max_ms": _ms(ordered[-1])}


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
