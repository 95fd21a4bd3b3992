"""common/serving/event_server.py, served as serve.py serves it (the thin ASGI app): what a
delivery gets back, per Knative's rules, and how the handlers run on THREADS threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from pydantic import SecretStr
from starlette.testclient import TestClient

from common.problems import Problem
from common.resources import Resources
from common.serving.asgi_app import thin_app
from common.serving.event_server import event_endpoint
from common.serving.worker_threads import WorkerThreads
from common.settings import Settings

HEADERS = {"ce-specversion": "1.0", "ce-id": "e1", "ce-source": "/saga/api",
           "ce-type": "shop.order.created.v1", "content-type": "application/json"}
LIMIT = 1000


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[CloudEvent, dict[str, str], bytes]] = []
        self.malformed: list[str] = []
        self.threads: set[str] = set()

    def handle(self, event: CloudEvent, headers: Mapping[str, str], body: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        data = event.get_data()
        if isinstance(data, dict) and "status" in data:
            raise Problem(data["status"], "refused", "as asked")
        if isinstance(data, dict) and data.get("bug"):
            raise ValueError("a bug")
        self.events.append((event, dict(headers), body))

    def on_malformed(self, headers: Mapping[str, str], body: bytes, why: str) -> None:
        self.malformed.append(why)


@pytest.fixture
def resources() -> Resources:
    return Resources(Settings(database_url=SecretStr("postgresql://nobody@127.0.0.1:1/none"),
                              threads=2))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(resources: Resources, recorder: Recorder) -> Iterator[TestClient]:
    endpoint = event_endpoint(recorder.handle, resources, max_body=LIMIT)
    with TestClient(thin_app(endpoint)) as test_client:
        yield test_client


def test_a_delivery_reaches_the_handler_on_a_worker_thread(
        client: TestClient, recorder: Recorder) -> None:
    response = client.post("/", headers=HEADERS | {"ce-partitionkey": "o1"},
                           content=b'{"order_id": "o1"}')
    assert (response.status_code, response.content) == (200, b"")
    [(event, headers, body)] = recorder.events
    assert (event["id"], event["partitionkey"], event.get_data()) == ("e1", "o1",
                                                                      {"order_id": "o1"})
    assert headers["ce-partitionkey"] == "o1" and body == b'{"order_id": "o1"}'
    assert recorder.threads and recorder.threads <= {"event_0", "event_1"}


def test_a_structured_event_reaches_the_handler_too(
        client: TestClient, recorder: Recorder) -> None:
    body = (b'{"specversion": "1.0", "id": "s1", "source": "/saga/api", "type": '
            b'"shop.order.created.v1", "partitionkey": "o2", "data": {"order_id": "o2"}}')
    response = client.post("/", headers={"content-type": "application/cloudevents+json"},
                           content=body)
    assert (response.status_code, response.content) == (200, b"")
    [(event, _, received)] = recorder.events
    assert (event["id"], event["type"], event["partitionkey"], event.get_data()) == (
        "s1", "shop.order.created.v1", "o2", {"order_id": "o2"})
    assert received == body


def test_a_problem_is_its_status_and_a_bug_a_500(client: TestClient) -> None:
    refused = client.post("/", headers=HEADERS, content=b'{"status": 422}')
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert client.post("/", headers=HEADERS, content=b'{"bug": true}').status_code == 500


def test_malformed_and_oversize_are_refused(client: TestClient) -> None:
    missing = client.post("/", headers={k: v for k, v in HEADERS.items() if k != "ce-id"},
                          content=b"{}")
    assert (missing.status_code, missing.json()["title"]) == (400, "malformed CloudEvent")
    assert client.post("/", headers=HEADERS, content=b"x" * (LIMIT + 1)).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: stopped once past the limit
        for _ in range(3):
            yield b"x" * (LIMIT // 2)

    assert client.post("/", headers=HEADERS, content=chunks()).status_code == 413


def test_probes_and_other_methods(client: TestClient) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 503  # no database behind these resources
    assert client.put("/").status_code == 405


def test_a_malformed_request_goes_to_its_handler_when_there_is_one(
        resources: Resources, recorder: Recorder) -> None:
    endpoint = event_endpoint(recorder.handle, resources, max_body=LIMIT,
                              on_malformed=recorder.on_malformed)
    with TestClient(thin_app(endpoint)) as client:
        assert client.post("/", headers={"x": "y"}, content=b"junk").status_code == 200
    assert len(recorder.malformed) == 1


def test_worker_threads_run_at_most_their_size_at_once() -> None:
    workers = WorkerThreads(2, "test")
    running, most, lock = [0], [0], threading.Lock()

    def work(n: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)  # the work itself: a call that takes a while
        with lock:
            running[0] -= 1
        return n * 2

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(workers.run(work, n) for n in range(6))))

    try:
        assert asyncio.run(main()) == [0, 2, 4, 6, 8, 10]
        assert most[0] == 2

        async def fails() -> None:
            await workers.run(int, "not a number")

        with pytest.raises(ValueError, match="not a number"):
            asyncio.run(fails())  # another loop: the same threads serve it
    finally:
        workers.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("test_")]
