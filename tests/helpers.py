"""Helpers shared by tests: build and post CloudEvents, read topics, wait on conditions.

Waiting is always on a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from cloudevents.kafka import KafkaMessage, from_binary
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pydantic import BaseModel
from sqlalchemy import Engine, create_engine

from common.cloudevents_kafka import KafkaHeaders, header_pairs, new_event
from common.kafka import client_config
from common.pg import Tx
from common.resources import Resources
from common.serving.asgi_app import resources_of
from common.settings import Settings
from common.tracing import TraceContext, new_trace
from tools import REPO_ROOT

T = TypeVar("T")

# The resources of every function client a test made (each main.py builds its own; kept,
# so that their background outbox marks can be waited for), and the tests' own engines
# (one per database, for the session).
_resources: list[Resources] = []
_engines: dict[str, Engine] = {}


def engine_of(settings: Settings) -> Engine:
    """An engine on `settings`' database for a test's own reads and writes (UTC sessions, as
    the functions' own: common/pg.py)."""
    url = settings.sqlalchemy_url()
    if url not in _engines:
        _engines[url] = create_engine(url, connect_args={
            "options": "-c timezone=UTC", "application_name": "saga-tests"})
    return _engines[url]


@contextmanager
def transaction_on(settings: Settings) -> Iterator[Tx]:
    """One transaction on `settings`' database, as the functions' own code takes it (a
    common.pg.Tx: to set up state with common.order_state, common.products, ...),
    committed at the end of the block."""
    with psycopg.connect(settings.postgres_url(), options="-c timezone=UTC") as conn:
        tx = Tx(conn)
        yield tx
    tx.committed()


def dispose_test_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def flush_marks(timeout: float = 5.0) -> bool:
    """Wait until every function client's published outbox rows are marked (in the
    background: common/outbox_marks.py)."""
    return all([resources.flush_marks(timeout) for resources in _resources])


def close_function_resources() -> None:
    """Close the resources of every function client made so far (a client used again
    opens them anew)."""
    for resources in _resources:
        resources.close(timeout=1.0)


def loaded_resources() -> Resources | None:
    """The resources of the function module functions-framework loaded last (its main.py,
    module `main`), remembered for flush_marks and close_function_resources."""
    resources = resources_of(sys.modules.get("main"))
    if resources is not None:
        _resources.append(resources)
    return resources


def from_kafka(headers: KafkaHeaders | None, key: bytes | str | None, value: bytes
               ) -> CloudEvent:
    """Parse a binary-mode Kafka record (what a test reads back from a topic)."""
    header_map = {name: v.encode() if isinstance(v, str) else v
                  for name, v in header_pairs(headers) if v is not None}
    text_key = key.decode() if isinstance(key, bytes) else key
    return from_binary(KafkaMessage(header_map, text_key, value), data_unmarshaller=_json_or_raw)


def _json_or_raw(value: bytes | str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        return value


def wait_for(
    condition: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)  # poll interval of a deadline-bounded wait


def run_saga(*argv: str) -> tuple[int, str, str]:
    """The `saga` CLI run in this process (it reads its settings afresh): (exit code,
    stdout, stderr)."""
    import contextlib
    import io

    from tools.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def make_event(
    event_type: str, data: BaseModel, *, source: str = "test", order_id: uuid.UUID | str,
    trace: TraceContext | None = None,
) -> CloudEvent:
    return new_event(event_type, data, source_function=source, partition_key=str(order_id),
                     trace=trace or new_trace())


@dataclass(frozen=True)
class Reply:
    """An answer from a function under test, with the Flask test response's parts the tests
    read, whichever server (Flask or ASGI) the function runs on."""

    status_code: int
    headers: Mapping[str, str]
    data: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def get_json(self) -> Any:
        return json.loads(self.data)

    def get_data(self, as_text: bool = False) -> bytes | str:
        return self.data.decode() if as_text else self.data


class AsgiClient:
    """An ASGI function (common/serving/asgi_app.py's app, as serve.py serves it)
    in-process, called like Flask's test client: post(path, headers=..., data=...,
    content_type=...), get(path)."""

    def __init__(self, app: Any) -> None:
        from starlette.testclient import TestClient

        self._client = TestClient(app, raise_server_exceptions=False)

    def post(self, path: str, *, headers: Mapping[str, str] | None = None,
             data: bytes | str = b"", content_type: str | None = None) -> Reply:
        sent = dict(headers or {})
        if content_type is not None:
            sent["Content-Type"] = content_type
        body = data.encode() if isinstance(data, str) else data
        return self._reply(self._client.post(path, headers=sent, content=body))

    def get(self, path: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        return self._reply(self._client.get(path, headers=dict(headers or {})))

    def put(self, path: str, *, headers: Mapping[str, str] | None = None,
            data: bytes = b"") -> Reply:
        return self._reply(self._client.put(path, headers=dict(headers or {}), content=data))

    @staticmethod
    def _reply(response: Any) -> Reply:
        return Reply(response.status_code, response.headers, response.content)


def function_client(target: str, source: str, signature: str, *, asgi: bool) -> Any:
    """A test client for a function as its manifest runs it (FUNCTION_USE_ASGI or not)."""
    factory: Callable[..., Any]
    if asgi:
        from common.serving.asgi_app import create_app as factory  # what serve.py serves

        client: Any = AsgiClient(factory(target, source, signature))
    else:
        from functions_framework import create_app as factory

        client = factory(target, source, signature).test_client()
    client.resources = loaded_resources()
    return client


def event_function_client(function: str) -> Any:
    """A test client for one of our CloudEvents functions (served over ASGI)."""
    folder = function.replace("-", "_")
    source = str(REPO_ROOT / "functions" / folder / "main.py")
    return function_client(folder, source, "http", asgi=True)


def post_event(client: Any, event: CloudEvent) -> Any:
    headers, body = to_binary(event)
    return client.post("/", headers=headers, data=body)


def read_topic(
    settings: Settings, topic: str, predicate: Callable[[CloudEvent], bool], *,
    timeout: float = 20.0,
) -> CloudEvent:
    """The first event on `topic` (read from the beginning of every partition, no consumer
    group) for which `predicate` holds."""
    consumer = Consumer(client_config(settings) | {
        "group.id": f"test-reader-{uuid.uuid4()}", "enable.auto.commit": False,
        "fetch.wait.max.ms": 10,
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            event = from_kafka(msg.headers(), msg.key(), msg.value() or b"")
            if predicate(event):
                return event
        raise AssertionError(f"no matching event on {topic} within {timeout}s")
    finally:
        consumer.close()


def money(value: str) -> Decimal:
    return Decimal(value)
