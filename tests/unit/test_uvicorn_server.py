"""QuietServer (common/uvicorn_server.py): one tick a second, yet a stop is seen at once."""

from __future__ import annotations

import signal
import threading
import urllib.request
from typing import Any

import uvicorn

from common.serving.uvicorn_server import QuietServer
from tests.helpers import wait_for
from tools.infra.ports import free_port


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_stop_is_seen_at_once_not_at_the_next_tick() -> None:
    port = free_port()
    server = QuietServer(uvicorn.Config(_app, host="127.0.0.1", port=port, loop="uvloop",
                                        log_config=None, access_log=False))
    server.tick_s = 300.0  # a stop that waited for the tick would outlast the test's wait
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, message="the server up")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
        assert reply.status == 200 and reply.headers["date"]
    server.handle_exit(signal.SIGTERM, None)
    thread.join(10)
    assert not thread.is_alive()
