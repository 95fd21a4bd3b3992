"""The "in the stack" column, read from a `saga bench` results file: each function's CPU
(every process it ran as: its server and, where there is one, a worker) over the events its
ECS lines say it handled in the run; the api per order accepted; the KafkaSource emulation
(the runtime process) and the broker per delivery; PostgreSQL and the whole stack per
order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.events import catalogue as c
from tools.bench.event.inprocess import STEP_FUNCTIONS


def cpu_s(processes: dict[str, dict[str, Any]], name: str) -> float:
    """A function's CPU over its processes ("inventory", "inventory/worker", ...)."""
    return sum(float(v.get("cpu_s", 0.0)) for k, v in processes.items()
               if k == name or k.startswith(name + "/"))


def switches(processes: dict[str, dict[str, Any]], name: str) -> int:
    """Voluntary context switches (wake-ups) of a function's processes, where recorded."""
    return sum(int(v.get("voluntary_switches", 0)) for k, v in processes.items()
               if k == name or k.startswith(name + "/"))


def from_bench(result: dict[str, Any], source: str) -> dict[str, Any]:
    processes: dict[str, dict[str, Any]] = result["processes"]
    handled: dict[str, dict[str, Any]] = result.get("functions") or {}
    orders = max(int(result.get("accepted") or result.get("orders") or 0), 1)
    deliveries = max(int(result.get("events_delivered") or 0), 1)
    functions: dict[str, dict[str, Any]] = {}
    for name in STEP_FUNCTIONS:
        events = int((handled.get(name) or {}).get("events") or 0)
        functions[name] = {
            "events": events,
            "cpu_ms_per_event": round(cpu_s(processes, name) * 1000 / max(events, 1), 3),
            "wakeups_per_event": round(switches(processes, name) / max(events, 1), 1)}
    functions[c.API] = {"events": orders,
                        "cpu_ms_per_event": round(cpu_s(processes, c.API) * 1000 / orders, 3),
                        "wakeups_per_event": round(switches(processes, c.API) / orders, 1)}
    stack_s = sum(float(v.get("cpu_s", 0.0)) for v in processes.values())
    return {
        "source": source,
        "commit": result.get("commit"),
        "orders": orders,
        "orders_per_s": result.get("orders_per_s"),
        "rate": (result.get("spec") or {}).get("rate"),
        "deliveries": deliveries,
        "functions": functions,
        "kafka_source_ms_per_delivery": round(cpu_s(processes, "runtime") * 1000 / deliveries, 3),
        "broker_ms_per_delivery": round(cpu_s(processes, "broker") * 1000 / deliveries, 3),
        "kafka_source_wakeups_per_delivery": round(switches(processes, "runtime") / deliveries,
                                                   1),
        "broker_ms_per_order": round(cpu_s(processes, "broker") * 1000 / orders, 2),
        "postgres_ms_per_order": round(cpu_s(processes, "postgres") * 1000 / orders, 2),
        "stack_ms_per_order": round(stack_s * 1000 / orders, 2),
        "machine": result.get("machine"),
    }


def read(path: Path) -> dict[str, Any]:
    return from_bench(json.loads(path.read_text(encoding="utf-8")), str(path))
