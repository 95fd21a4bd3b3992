"""The "served" column: each function as the local runtime runs it (its Knative manifest,
forked from the zygote, its own server), the events POSTed one at a time over one
keep-alive connection per function, as a KafkaSource delivers them (binary mode, `Prefer:
reply`). The CPU is the function's process tree; its log lines go where the runtime sends
them."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent

from common.cloudevents_kafka import kafka_to_http, to_kafka
from common.events import catalogue as c
from tools import REPO_ROOT
from tools.bench.event.chain import Meter, tree_meter
from tools.bench.event.inprocess import STEP_FUNCTIONS, BenchError
from tools.manifests.loader import load_project_manifests
from tools.runtime.console import Console
from tools.runtime.serving.function_process import FunctionProcess
from tools.runtime.serving.starter import ProcessStarter

# The function writes its outbox marks every 0.1 s (common/outbox_marks.py): a window
# ends after its last batch, so that work is counted with the events that caused it.
_SETTLE_S = 0.3


class Served:
    def __init__(self, env: dict[str, str], log_dir: Path, console_path: Path, *,
                 starter: ProcessStarter | None = None, start_timeout: float = 30.0,
                 request_timeout: float = 30.0) -> None:
        manifests = load_project_manifests(REPO_ROOT)
        self._console_out = console_path.open("a", encoding="utf-8")
        console = Console(self._console_out)
        # The runtime's own starter (forked from the zygote), unless told otherwise (the
        # callgrind mode starts every function under valgrind).
        self._starter = starter or ProcessStarter(cwd=REPO_ROOT, env=env, report=console.line)
        self._processes = {
            name: FunctionProcess(manifests.functions[name], cwd=REPO_ROOT, env=env,
                                  log_dir=log_dir, console=console, idle_after=3600,
                                  starter=self._starter, start_timeout=start_timeout)
            for name in (c.API, *STEP_FUNCTIONS)}
        with ThreadPoolExecutor(max_workers=len(self._processes)) as pool:
            list(pool.map(lambda p: p.start(), self._processes.values()))
        self._connections: dict[str, http.client.HTTPConnection] = {}
        self._request_timeout = request_timeout

    def _post(self, function: str, path: str, headers: dict[str, str], body: bytes
              ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            connection = self._connections.get(function)
            if connection is None:
                port = self._processes[function].status().port
                connection = self._connections[function] = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=self._request_timeout)
            try:
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The server closed the idle connection (gunicorn's keep-alive is 2 s):
                # a new one, once. Safe: orders carry an Idempotency-Key, events an id.
                connection.close()
                del self._connections[function]
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def place(self, token: str, body: dict[str, Any], key: str) -> str:
        status, answer = self._post(c.API, "/orders", {
            "Authorization": f"Bearer {token}", "Idempotency-Key": key,
            "Content-Type": "application/json"}, json.dumps(body).encode())
        if status != 201:
            raise BenchError(f"POST /orders: {status} {answer[:300]!r}")
        return str(json.loads(answer)["id"])

    def begin(self, function: str) -> None:
        pass

    def deliver(self, consumer: str, event: CloudEvent) -> None:
        record = to_kafka(event)
        headers, body = kafka_to_http(record.headers, record.key, record.value)
        status, answer = self._post(consumer, "/", headers | {"Prefer": "reply"}, body)
        if not 200 <= status < 300:
            raise BenchError(f"{consumer} answered {status} to {event['type']}: {answer[:300]!r}")

    def meter(self, function: str) -> Meter:
        return tree_meter(self._processes[function].status().pid)

    def settle(self) -> None:
        time.sleep(_SETTLE_S)

    def processes(self) -> dict[str, int | None]:
        return {name: p.status().pid for name, p in self._processes.items()}

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        with ThreadPoolExecutor(max_workers=len(self._processes)) as pool:
            list(pool.map(lambda p: p.stop(), self._processes.values()))
        self._starter.close()
        self._console_out.close()
