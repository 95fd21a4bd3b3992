"""Dispatch throughput: KafkaSource emulation -> a no-op function.

    .venv/bin/python -m tools.bench.dispatch [--events 20000] [--ordering ordered]
        [--partitions 3] [--workers 1] [--threads 8] [--bootstrap host:port] [--raw-sink]

One dispatcher (fresh group, earliest) timed delivering --events CloudEvents with 2xx to
tests/integration/fixtures/runtime_echo.py:noop, or to a bare HTTP server with --raw-sink
(its own cost); without --bootstrap (or KAFKA_BOOTSTRAP_SERVERS), on an embedded broker."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import Producer

from common.cloudevents_kafka import KafkaRecord
from common.kafka import producer_config
from tools import REPO_ROOT
from tools.infra.kafka_clients import ensure_topics
from tools.infra.ports import free_port
from tools.manifests.specs import DeliverySpec, FunctionSpec, KafkaSourceSpec
from tools.manifests.topics import TopicSpec
from tools.runtime.console import Console
from tools.runtime.eventing.delivery import HttpSender
from tools.runtime.eventing.kafka_source import KafkaSourceDispatcher
from tools.runtime.serving import children
from tools.runtime.serving.function_process import FunctionProcess
from tools.settings import KafkaBrokerKind, LocalSettings

SINK = "tests/integration/fixtures/runtime_echo.py"


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[tuple[str, KafkaBrokerKind]]:
    """(bootstrap servers, the broker's kind): the given one (Kafka), else a Tansu broker."""
    if bootstrap:
        yield bootstrap, "kafka"
        return
    from tools.infra.tansu import TansuBroker

    with TansuBroker() as embedded:
        yield embedded.bootstrap, "tansu"


class _RawSink:
    """A Target for --raw-sink: a bare HTTP server process that answers 200 to anything."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = children.spawn([sys.executable, "-m", "tools.bench.dispatch",
                                     "--serve-raw", str(self.port)], cwd=REPO_ROOT,
                                    env=dict(os.environ))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.02)
        raise RuntimeError("raw sink did not start")

    def acquire(self) -> str:
        return self.url

    def release(self) -> None:
        pass

    def stop(self) -> None:
        children.terminate(self._process, 2)


async def _serve_raw(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def produce(settings: LocalSettings, topic: str, count: int) -> float:
    producer = Producer(producer_config(settings) | {"linger.ms": 5})
    started = time.monotonic()
    body = b'{"order_id":"00000000-0000-0000-0000-000000000000","n":1}'
    for n in range(count):
        key = f"order-{n % 64}".encode()
        record = KafkaRecord(topic, key, body, [
            ("ce_specversion", b"1.0"), ("ce_id", str(uuid.uuid4()).encode()),
            ("ce_source", b"/saga/bench"), ("ce_type", b"shop.bench.v1"),
            ("content-type", b"application/json")])
        while True:
            try:
                producer.produce(record.topic, record.value, record.key, headers=record.headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--ordering", choices=("ordered", "unordered"), default="ordered")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--raw-sink", action="store_true")
    parser.add_argument("--serve-raw", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_raw:
        asyncio.run(_serve_raw(args.serve_raw))
        return 0

    with broker(args.bootstrap) as (bootstrap, kind):
        settings = LocalSettings().model_copy(update={"kafka_bootstrap_servers": bootstrap,
                                                 "kafka_broker_kind": kind})
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        ensure_topics(settings, [TopicSpec(topic, args.partitions)])
        produced_in = produce(settings, topic, args.events)
        print(f"produced {args.events} events in {produced_in:.2f} s "
              f"({args.events / produced_in:,.0f}/s)")
        console = Console()
        function: FunctionProcess | _RawSink
        if args.raw_sink:
            function = _RawSink()
        else:
            function = FunctionProcess(
                FunctionSpec(name="bench-noop", target="noop", source=SINK,
                             signature_type="cloudevent",
                             env={"THREADS": str(args.threads), "WORKERS": str(args.workers)}),
                cwd=REPO_ROOT, env={"RUNTIME_ECHO_QUIET": "1"}, console=console, idle_after=3600,
                log_dir=Path(tempfile.mkdtemp(prefix="bench-logs-")))
            function.start()
        source = KafkaSourceSpec(name="bench", consumer_group=f"bench-{topic}", topics=(topic,),
                                 sink="bench-noop", initial_offset="earliest",
                                 ordering=args.ordering, delivery=DeliverySpec(retry=0))
        sender = HttpSender()
        dispatcher = KafkaSourceDispatcher(source, settings=settings, target=function,
                                           request_timeout=30, sender=sender, console=console)
        try:
            dispatcher.start()
            if not dispatcher.wait_assigned(60):
                print("no partition assignment within 60 s", file=sys.stderr)
                return 1
            first = time.monotonic()
            while dispatcher.stats().delivered < min(100, args.events):
                time.sleep(0.01)  # measurement loop, not a test
            started, base = time.monotonic(), dispatcher.stats().delivered
            while (stats := dispatcher.stats()).delivered + stats.dead_lettered < args.events:
                if time.monotonic() - first > 600:
                    break
                time.sleep(0.02)
            elapsed = time.monotonic() - started
            done = dispatcher.stats().delivered - base
            print(f"dispatched {done} events in {elapsed:.2f} s: {done / elapsed:,.0f} events/s "
                  f"(ordering={args.ordering}, partitions={args.partitions}, "
                  + ("raw sink" if args.raw_sink else
                     f"gunicorn workers={args.workers} threads={args.threads}")
                  + f", broker={kind})")
        finally:
            dispatcher.stop()
            sender.close()
            function.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
