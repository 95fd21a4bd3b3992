"""One delivery through event_endpoint as a KafkaSource POSTs it (binary mode, a no-op
handler), the ASGI request and response driven directly on uvloop: no socket, no HTTP
parse."""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from types import SimpleNamespace
from typing import Any, cast

import uvloop
from cloudevents.http import CloudEvent
from starlette.requests import Request

from common.resources import Resources
from common.serving.event_server import event_endpoint

WARMUP = 200
ORDER = "8c6c1c3e-1111-2222-3333-444455556666"
BODY = json.dumps({"order_id": ORDER, "customer_id": "alice", "total": "25.00", "items": [
    {"sku": "SKU-1", "quantity": 2, "unit_price": "12.50"}]}).encode()
HEADERS = [(name.encode(), value.encode()) for name, value in {
    "host": "inventory.default.svc", "content-type": "application/json",
    "content-length": str(len(BODY)), "ce-specversion": "1.0",
    "ce-id": "partition:0/offset:42",
    "ce-source": "/apis/v1/namespaces/default/kafkasources/inventory#saga.orders",
    "ce-type": "shop.order.created.v1", "ce-subject": ORDER,
    "ce-time": "2026-12-07T08:00:00.000Z", "ce-partitionkey": ORDER,
    "ce-traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "ce-key": "8c6c1c3e",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "user-agent": "Go-http-client/1.1",
}.items()]
SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
    "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
    "headers": HEADERS, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080)}


def deliveries(n: int, total: int) -> None:
    handled: list[str] = []

    def handle(event: CloudEvent, headers: Mapping[str, str], body: bytes) -> None:
        handled.append(event["id"])

    resources = cast(Resources, SimpleNamespace(settings=SimpleNamespace(threads=4)))
    endpoint = event_endpoint(handle, resources, max_body=1 << 20)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def deliver(sent: list[MutableMapping[str, Any]]) -> None:
        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = dict(SCOPE)
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)

    async def main() -> None:
        for _ in range(WARMUP):
            sent: list[MutableMapping[str, Any]] = []
            await deliver(sent)
            assert sent[0]["status"] == 200, sent
        for _ in range(n):
            await deliver([])

    uvloop.run(main())
    assert len(handled) == WARMUP + n, len(handled)
