"""The runtime's control port starting a function for a request sent from outside the
runtime (`saga send --to`), on the echo function run as the runtime runs it (min-scale 0):
started cold when it is not running, held from scaling to zero while the request is in
flight (one longer than the idle period is not cut), its idle period counted from the
release; a hold whose sender never releases it ends by itself; and every refusal. The
scale-to-zero checks pass the clock in (`stop_if_idle(now)`), so nothing sleeps."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import urllib3

from tests.helpers import wait_for
from tests.integration.runtime_support import echo_spec
from tools import REPO_ROOT
from tools.runtime.console import Console
from tools.runtime.control import HOLD_S, ControlClient, ControlError, ControlServer
from tools.runtime.serving.function_process import FunctionProcess

pytestmark = pytest.mark.integration

IDLE_S = 60.0  # the clock is passed in: only its size relative to `now` matters


@pytest.fixture
def idle_echo(tmp_path: Path) -> Iterator[FunctionProcess]:
    """The echo function as the runtime runs a min-scale 0 one, not started yet."""
    function = FunctionProcess(echo_spec("echo", min_scale=0), cwd=REPO_ROOT,
                               env={"RUNTIME_ECHO_RECORD": str(tmp_path / "received.ndjson")},
                               log_dir=tmp_path, console=Console(), idle_after=IDLE_S)
    try:
        yield function
    finally:
        function.stop()


def post_event(url: str, event_id: str, data: dict[str, str]) -> int:
    """A binary-mode CloudEvent, as a KafkaSource (and `saga send`) POSTs it."""
    headers = {"ce-specversion": "1.0", "ce-id": event_id, "ce-source": "/saga/test",
               "ce-type": "shop.test.v1", "content-type": "application/json"}
    reply = urllib3.PoolManager(retries=False).request(
        "POST", url, body=json.dumps(data).encode(), headers=headers, timeout=60)
    return reply.status


def received(tmp_path: Path, event_id: str) -> bool:
    """The echo function recorded the event (it records before it answers)."""
    path = tmp_path / "received.ndjson"
    return path.exists() and any(json.loads(line)["attributes"]["id"] == event_id
                                 for line in path.read_text().splitlines())


def test_a_function_not_running_is_started_and_held_until_released(
        idle_echo: FunctionProcess, tmp_path: Path) -> None:
    with ControlServer({}, functions={"echo": idle_echo}) as server:
        client = ControlClient(server.url, server.token)
        assert idle_echo.status().state == "not_started"
        started = client.start_function("echo")
        status = idle_echo.status()
        assert started.cold_start and status.state == "running"
        assert started.url == f"http://127.0.0.1:{status.port}"
        assert status.last_cold_start_ms is not None  # logged as a cold start

        # A request the function keeps in flight well past its idle period: while it is
        # held, the scaler leaves the function alone.
        gate = tmp_path / "gate"
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(post_event, started.url, "held-1", {"gate": str(gate)})
            wait_for(lambda: received(tmp_path, "held-1"), timeout=30,
                     message="the request to reach the function")
            past_idle = time.monotonic() + IDLE_S + 10
            assert past_idle < time.monotonic() + HOLD_S  # (the hold's own limit is later)
            assert not idle_echo.stop_if_idle(now=past_idle)
            gate.touch()
            assert answer.result(60) == 200
        client.release_function(started)
        released = time.monotonic()

        # Its idle period starts at the release, as after a delivery.
        assert not idle_echo.stop_if_idle(now=released + IDLE_S / 2)
        assert idle_echo.stop_if_idle(now=released + 2 * IDLE_S)
        assert idle_echo.status().state == "scaled_to_zero"

        again = client.start_function("echo")  # scaled to zero: a cold start again
        assert again.cold_start and idle_echo.status().state == "running"
        warm = client.start_function("echo")  # running: no start, the same process
        assert not warm.cold_start and warm.url == again.url
        assert post_event(warm.url, "warm-1", {}) == 200
        for hold in (again, warm):
            client.release_function(hold)
        with pytest.raises(ControlError, match=r"HTTP 404.*echo has no hold"):
            client.release_function(warm)  # once only


def test_a_hold_never_released_ends_by_itself(idle_echo: FunctionProcess) -> None:
    """A sender killed half-way never releases: its hold lasts its seconds, then the idle
    period runs from there."""
    hold = idle_echo.hold(5.0)
    assert hold.cold_start
    granted = time.monotonic()
    assert not idle_echo.stop_if_idle(now=granted + 4 + IDLE_S)  # still held
    assert not idle_echo.stop_if_idle(now=granted + 6 + IDLE_S / 2)  # over, idle since 5 s
    assert idle_echo.stop_if_idle(now=granted + 6 + IDLE_S)
    assert not idle_echo.release_hold(hold.id)  # expired: nothing to release


def test_the_refusals(idle_echo: FunctionProcess) -> None:
    with ControlServer({}, functions={"echo": idle_echo}) as server:
        client = ControlClient(server.url, server.token)
        with pytest.raises(ControlError, match=r"HTTP 404 .*no function 'nope'.*\"echo\""):
            client.start_function("nope")
        with pytest.raises(ControlError, match=r"HTTP 403 .*X-Saga-Control-Token"):
            ControlClient(server.url, "wrong").start_function("echo")
        assert idle_echo.status().state == "not_started"  # neither started it
        idle_echo.stop()  # the runtime is stopping: nothing starts any more
        with pytest.raises(ControlError, match=r"HTTP 503 .*echo is stopped"):
            client.start_function("echo")
