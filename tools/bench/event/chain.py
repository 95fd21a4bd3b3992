"""The happy path as stages, and what each costs. Stage 0 is the api's POST /orders; each
later stage delivers the events the one before emitted (read back from the outbox) to each
consumer the catalogue names, one consumer at a time, so a window of CPU belongs to one
function: eight deliveries per order, as in the stack (order.created -> inventory, ...,
order.completed -> notifications). A delivery mode (inprocess.py, served.py) says how an
event reaches a function and whose CPU counts; PostgreSQL's and the broker's CPU in each
window are recorded beside it."""

from __future__ import annotations

import functools
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import psutil
from cloudevents.http import CloudEvent
from sqlalchemy import Engine, select

from common import tables as t
from common.cloudevents_kafka import event_from_parts
from common.events import catalogue as c

Meter = Callable[[], float]  # CPU seconds spent so far
NOT_DELIVERED_TO = frozenset({c.API, c.TIMEOUTS})  # consumers no KafkaSource feeds


class Mode(Protocol):
    """How events reach the functions in one column of the breakdown."""

    def place(self, token: str, body: dict[str, Any], key: str) -> str:
        """POST /orders as the customer of `token`; the new order's id."""
        ...

    def begin(self, function: str) -> None:
        """Before a window of `function` (outside it)."""
        ...

    def deliver(self, consumer: str, event: CloudEvent) -> None: ...

    def meter(self, function: str) -> Meter:
        """The CPU of what serves `function` in this mode."""
        ...

    def settle(self) -> None:
        """End of a window: let the function finish the work its events caused (the
        batched outbox marks), inside the window."""
        ...


@dataclass
class Cost:
    """CPU seconds in the windows of one function (or one event type)."""

    events: int = 0
    function_s: float = 0.0
    postgres_s: float = 0.0
    broker_s: float = 0.0

    def add(self, other: Cost) -> None:
        self.events += other.events
        self.function_s += other.function_s
        self.postgres_s += other.postgres_s
        self.broker_s += other.broker_s

    def per_event_ms(self) -> dict[str, float | int]:
        n = max(self.events, 1)
        return {"events": self.events,
                "cpu_ms_per_event": round(self.function_s * 1000 / n, 3),
                "postgres_ms_per_event": round(self.postgres_s * 1000 / n, 3),
                "broker_ms_per_event": round(self.broker_s * 1000 / n, 3)}


@dataclass
class ChainResult:
    functions: dict[str, Cost] = field(default_factory=lambda: defaultdict(Cost))
    by_type: dict[str, Cost] = field(default_factory=lambda: defaultdict(Cost))
    orders: int = 0
    seconds: float = 0.0


def tree_meter(pid: int | None) -> Meter:
    """CPU of a process and every descendant alive when read (a server's workers,
    PostgreSQL's backends)."""
    if pid is None:
        return lambda: 0.0
    root = psutil.Process(pid)

    def read() -> float:
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return total

    return read


def order_body(rng: random.Random, skus: list[str]) -> dict[str, Any]:
    lines = rng.sample(skus, rng.randint(1, 2))
    return {"items": [{"sku": sku, "quantity": rng.randint(1, 2)} for sku in lines],
            "payment_mode": "auto", "shipping_address": "1 Bench Street, Testville"}


def run_chain(mode: Mode, engine: Engine, *, tokens: list[str], skus: list[str], orders: int,
              postgres: Meter, broker: Meter, seed: int = 7) -> ChainResult:
    """`orders` happy-path orders through every stage in `mode`."""
    rng = random.Random(seed)
    result = ChainResult(orders=orders)
    started = time.monotonic()
    bodies = [(tokens[i % len(tokens)], order_body(rng, skus), uuid.uuid4().hex)
              for i in range(orders)]
    order_ids: list[str] = []

    def place_all() -> None:
        order_ids.extend(mode.place(token, body, key) for token, body, key in bodies)

    cost = _window(mode, c.API, place_all, len(bodies), postgres, broker)
    result.functions[c.API].add(cost)
    result.by_type["POST /orders"].add(cost)
    events = _created(engine, order_ids)
    while events:
        by_consumer: dict[str, list[CloudEvent]] = defaultdict(list)
        for event in events:
            for consumer in sorted(c.CATALOGUE[event["type"]].consumers - NOT_DELIVERED_TO):
                by_consumer[consumer].append(event)
        events = []
        for consumer, batch in sorted(by_consumer.items()):
            cost = _window(mode, consumer, functools.partial(_each, mode, consumer, batch),
                           len(batch), postgres, broker)
            result.functions[consumer].add(cost)
            for event_type in {e["type"] for e in batch}:
                share = sum(1 for e in batch if e["type"] == event_type) / len(batch)
                result.by_type[f"{consumer} <- {event_type}"].add(Cost(
                    round(share * len(batch)), cost.function_s * share,
                    cost.postgres_s * share, cost.broker_s * share))
            events.extend(_emitted(engine, consumer, [str(e["id"]) for e in batch]))
    result.seconds = time.monotonic() - started
    return result


def _each(mode: Mode, consumer: str, batch: Iterable[CloudEvent]) -> None:
    for event in batch:
        mode.deliver(consumer, event)


def _window(mode: Mode, function: str, work: Callable[[], None], events: int,
            postgres: Meter, broker: Meter) -> Cost:
    mode.begin(function)
    meter = mode.meter(function)
    before = (meter(), postgres(), broker())
    work()
    mode.settle()
    after = (meter(), postgres(), broker())
    return Cost(events, after[0] - before[0], after[1] - before[1], after[2] - before[2])


def _created(engine: Engine, order_ids: list[str]) -> list[CloudEvent]:
    o = t.outbox
    return _read(engine, select(o.c.attributes, o.c.data)
                 .where(o.c.producer == c.API, o.c.partition_key.in_(order_ids))
                 .order_by(o.c.created_at))


def _emitted(engine: Engine, producer: str, caused_by: list[str]) -> list[CloudEvent]:
    o = t.outbox
    return _read(engine, select(o.c.attributes, o.c.data)
                 .where(o.c.producer == producer, o.c.caused_by.in_(caused_by))
                 .order_by(o.c.created_at))


def _read(engine: Engine, query: Any) -> list[CloudEvent]:
    with engine.connect() as conn:
        return [event_from_parts(r.attributes, r.data) for r in conn.execute(query)]
