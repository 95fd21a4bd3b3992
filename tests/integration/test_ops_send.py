"""`saga send` through the CLI, in-process: published to the session's broker, the record is
read back where the command said it put it (binary mode, keyed by the order); POSTed to an
endpoint, the request is the binary-mode one a KafkaSource sends, and a refusal is shown
with its problem body and exit 1."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from common.events import catalogue as c
from common.kafka import client_config
from common.settings import Settings
from tools.cli.main import main as saga_main

pytestmark = pytest.mark.integration

PROBLEM = {"type": "about:blank", "title": "step failed", "status": 500,
           "detail": "RaiseException"}


def saga(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = saga_main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _requested() -> dict[str, str]:
    return {"order_id": str(uuid.uuid4()), "customer_id": "alice", "amount": "12.50"}


def _as_produced(data: dict[str, str]) -> dict[str, str]:
    """The data as the model dumps it, defaults included (what our producers send too)."""
    return data | {"shipping_address": ""}


def test_published_to_its_topic_as_our_producers_publish(
        saga_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("SAGA_STATE_DIR", str(tmp_path))  # no local runtime: the env's broker
    data = _requested()
    code, out, err = saga("send", c.PAYMENT_REQUESTED, "--data", json.dumps(data), "--json")
    assert code == 0, err
    sent = json.loads(out)
    assert sent["topic"] == c.PAYMENT_REQUESTED and sent["data"] == _as_produced(data)

    consumer = Consumer(client_config(saga_env) | {"group.id": f"t-{uuid.uuid4()}",
                                                   "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(sent["topic"], sent["partition"], sent["offset"])])
        message = consumer.poll(10)
    finally:
        consumer.close()
    assert message is not None and message.error() is None
    headers = {name: value.decode() if isinstance(value, bytes) else value
               for name, value in list(message.headers() or []) if value is not None}
    assert message.key() == data["order_id"].encode()
    assert json.loads(message.value() or b"") == _as_produced(data)
    assert headers["content-type"] == "application/json"
    assert {name: headers[f"ce_{name}"] for name in ("id", "type", "source", "subject")} == {
        "id": sent["id"], "type": c.PAYMENT_REQUESTED, "source": "/saga/saga-send",
        "subject": data["order_id"]}
    assert {"ce_time", "ce_traceparent", "ce_specversion"} <= set(headers)


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP endpoint that records each request and refuses it as a failing step does."""
    received: list[dict[str, Any]] = []

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": body})
            answer = json.dumps(PROBLEM).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", received
    finally:
        server.shutdown()
        server.server_close()


def test_posted_in_binary_mode_and_a_refusal_shown(
        endpoint: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = endpoint
    data = _requested()
    code, out, _ = saga("send", c.PAYMENT_REQUESTED, "--data", json.dumps(data), "--url", url)
    assert code == 1  # sent, and refused
    assert f"-> {url}: 500" in out and '"title": "step failed"' in out
    [request] = received
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert json.loads(request["body"]) == _as_produced(data)
    assert headers["ce-type"] == c.PAYMENT_REQUESTED
    assert headers["ce-partitionkey"] == headers["ce-subject"] == data["order_id"]
    assert headers["content-type"] == "application/json"

    code, out, _ = saga("send", c.PAYMENT_REQUESTED, "--data", json.dumps(data), "--url", url,
                        "--json", "--id", "fixed-id")
    assert code == 1
    assert json.loads(out) | {"attributes": None} == {
        "id": "fixed-id", "type": c.PAYMENT_REQUESTED, "attributes": None,
        "data": _as_produced(data), "url": url, "status": 500, "body": PROBLEM}
