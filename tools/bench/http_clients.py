"""Client CPU per POST: the KafkaSource emulation's HTTP client (eventing/http_client.py)
against the libraries it could use instead, each POSTing a binary CloudEvent to a bare
HTTP sink one request at a time over one keep-alive connection, as a partition does.
aiohttp is included when it is installed (it is no dependency). Figures: docs/benchmarks.md.

    .venv/bin/python -m tools.bench.http_clients [--requests 5000] [--rounds 3]"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import resource
import socket
import sys
import time
from collections.abc import Callable

import urllib3

from tools import REPO_ROOT
from tools.infra.ports import free_port
from tools.runtime.eventing.http_client import HttpClient
from tools.runtime.serving import children

HEADERS = {
    "ce-specversion": "1.0", "ce-id": "7c1f6c1e-4a4e-4f8e-9d8e-2f1d1c0b9a8e",
    "ce-source": "/saga/api", "ce-type": "shop.order.created.v1",
    "ce-partitionkey": "987ea4ad-d8b2-4369-aef1-5c0cfd41d594",
    "ce-traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "Content-Type": "application/json", "Prefer": "reply"}
BODY = (b'{"order_id":"987ea4ad-d8b2-4369-aef1-5c0cfd41d594","customer_id":"c1","items":'
        b'[{"sku":"A","quantity":1,"unit_price":"1.00"}],"total":"1.00","payment_mode":"auto"}')


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def clients(port: int, n: int) -> dict[str, Callable[[], None]]:
    def hand_written() -> None:
        client = HttpClient()
        for _ in range(n):
            client.post("127.0.0.1", port, "/", HEADERS, BODY, 10)
        client.close()

    def with_urllib3() -> None:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, retries=False)
        for _ in range(n):
            pool.urlopen("POST", "/", body=BODY, headers=HEADERS)

    def with_http_client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        for _ in range(n):
            connection.request("POST", "/", BODY, HEADERS)
            connection.getresponse().read()
        connection.close()

    found = {"hand-written": hand_written, "urllib3": with_urllib3,
             "http.client": with_http_client}
    if importlib.util.find_spec("aiohttp") is not None:
        found["aiohttp on uvloop"] = lambda: _aiohttp(port, n)
    return found


def _aiohttp(port: int, n: int) -> None:
    import aiohttp
    import uvloop

    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(n):
                async with session.post(f"http://127.0.0.1:{port}/", data=BODY,
                                        headers=HEADERS) as response:
                    await response.read()

    uvloop.run(go())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    port = free_port()
    sink = children.spawn([sys.executable, "-m", "tools.bench.dispatch", "--serve-raw", str(port)],
                       cwd=REPO_ROOT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # the sink is starting, bounded by the deadline
        for round_number in range(args.rounds):
            for name, run in clients(port, args.requests).items():
                cpu, wall = _cpu(), time.monotonic()
                run()
                cpu, wall = _cpu() - cpu, time.monotonic() - wall
                print(f"round {round_number + 1} {name:18} client CPU "
                      f"{cpu * 1e6 / args.requests:6.1f} us/POST, wall "
                      f"{wall * 1e6 / args.requests:6.1f} us", flush=True)
    finally:
        children.terminate(sink, 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
