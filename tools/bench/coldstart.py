"""Cold start: from the first event for a scaled-to-zero function to its 2xx.

    .venv/bin/python -m tools.bench.coldstart [--runs 20] [--function inventory] [--no-zygote]

The function runs from its Knative manifest as `saga up` runs it (FunctionProcess, the
zygote, the warm-up), on DATABASE_URL or an embedded PostgreSQL and on
KAFKA_BOOTSTRAP_SERVERS or an embedded broker. Each run scales it to zero, then delivers
one real event as a KafkaSource does (acquire -> cold start -> POST), timed to the 2xx."""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from common.cloudevents_kafka import kafka_to_http, new_event, to_kafka
from common.events import catalogue
from common.tracing import new_trace
from tools import REPO_ROOT
from tools.infra.kafka_clients import ensure_topics
from tools.manifests.loader import load_project_manifests
from tools.manifests.specs import DeliverySpec
from tools.runtime.console import Console
from tools.runtime.eventing.delivery import HttpSender, Verdict, deliver
from tools.runtime.serving.function_process import FunctionProcess
from tools.runtime.serving.starter import ProcessStarter
from tools.settings import LocalSettings, broker_env


def event_for(function: str) -> tuple[dict[str, str], bytes]:
    """A real event the function handles, as the HTTP request a KafkaSource sends."""
    order = uuid.uuid4()
    data: dict[str, Any] = {"order_id": str(order), "customer_id": "bench"}
    consumed = catalogue.types_consumed_by(function)
    event_type = next((t for t in (catalogue.ORDER_CREATED, catalogue.ORDER_COMPLETED)
                       if t in consumed), None)
    if event_type is None:
        raise SystemExit(f"{function}: benchmark inventory (order.created) or "
                         "notifications (order.completed)")
    if event_type == catalogue.ORDER_CREATED:
        data |= {"items": [{"sku": "MUG-001", "quantity": 1, "unit_price": "12.50"}],
                 "total": "12.50", "payment_mode": "auto",
                 "created_at": datetime.now(UTC).isoformat()}
    model = catalogue.CATALOGUE[event_type].model.model_validate(data)
    event = new_event(event_type, model, source_function="bench", partition_key=str(order),
                      trace=new_trace())
    record = to_kafka(event)
    return kafka_to_http(record.headers, record.key, record.value)


def measure(settings: LocalSettings, function: str, runs: int, use_zygote: bool,
            env: dict[str, str]) -> list[tuple[float, float]]:
    """(seconds to the 2xx, of which starting) for each cold start."""
    spec = load_project_manifests(REPO_ROOT).functions[function]
    starter = ProcessStarter(cwd=REPO_ROOT, env=env, use_zygote=use_zygote)
    starter.prepare()
    process = FunctionProcess(spec, cwd=REPO_ROOT, env=env, console=Console(io.StringIO()),
                              log_dir=Path(tempfile.mkdtemp(prefix="coldstart-logs-")),
                              idle_after=3600, starter=starter)
    sender = HttpSender()
    results = []
    try:
        for _ in range(runs):
            process.stop_if_idle(now=time.monotonic() + 7200)  # scale it to zero
            headers, body = event_for(function)
            began = time.monotonic()
            result = deliver(sender, process, headers, body, DeliverySpec(retry=0),
                             timeout=30, interrupted=threading.Event())
            total = time.monotonic() - began
            if result.verdict is not Verdict.SUCCESS:
                raise RuntimeError(f"{function} answered {result.last.status} "
                                   f"{result.last.body[:300]!r}")
            start_ms = process.status().last_cold_start_ms or 0.0
            results.append((total, start_ms / 1000))
    finally:
        sender.close()
        process.stop()
        starter.close()
    return results


def main(argv: list[str] | None = None) -> int:
    from common.migrate import upgrade
    from tools.infra import create_database, drop_database
    from tools.infra.resolve import infrastructure
    from tools.runtime.seed import seed_catalogue

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--function", default="inventory")
    parser.add_argument("--no-zygote", action="store_true", help="spawn each start fresh")
    args = parser.parse_args(argv)
    settings = LocalSettings()
    given = settings.database_url.get_secret_value() if settings.database_url else None
    scratch = f"saga_coldstart_{uuid.uuid4().hex[:8]}"
    if given is not None:  # a database of its own on that server, dropped at the end
        settings = settings.model_copy(update={
            "database_url": SecretStr(create_database(given, scratch))})
    with tempfile.TemporaryDirectory(prefix="coldstart-") as state, \
            infrastructure(settings, Path(state), database="coldstart",
                           broker=settings.broker) as infra:
        upgrade(infra.database_url)
        seed_catalogue(infra.database_url, REPO_ROOT)
        settings = settings.model_copy(update={
            "database_url": SecretStr(infra.database_url),
            "kafka_bootstrap_servers": infra.kafka_bootstrap,
            "kafka_broker_kind": infra.broker_kind(settings)})
        ensure_topics(settings, catalogue.topics())
        env = {"DATABASE_URL": infra.database_url,
               "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
               **broker_env(settings.kafka_broker_kind),
               "SAGA_PROFILE": "local", "SAGA_JWT_SECRET": "bench-" + "x" * 40}
        try:
            results = measure(settings, args.function, args.runs, not args.no_zygote, env)
        finally:
            if given is not None:
                drop_database(given, scratch)
    totals = [total for total, _ in results]
    starts = [start for _, start in results]
    print(f"{args.function}: {len(results)} cold starts, first event to 2xx: median "
          f"{statistics.median(totals) * 1000:.0f} ms, max {max(totals) * 1000:.0f} ms, "
          f"min {min(totals) * 1000:.0f} ms (of which starting the process: median "
          f"{statistics.median(starts) * 1000:.0f} ms); zygote: {not args.no_zygote}")
    print("runs (ms):", " ".join(f"{t * 1000:.0f}" for t in totals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
