"""The running runtime's control channel: a loopback HTTP port, recorded in
runtime-state.json ("control": {"url", "token"}). `saga replay --pause` asks a KafkaSource
to leave its group and join it again: GET /sources; POST /sources/<name>/pause (200 once it
left, 504 if it did not); POST /sources/<name>/resume. `saga send --to` has a function
started as a delivery starts it: POST /functions/<name>/start (200 with its port once it
answers, held from scaling to zero until POST /functions/<name>/release/<hold>, or HOLD_S).
Only 127.0.0.1 is bound and every request must carry the state file's random token
(X-Saga-Control-Token): another user's process or a web page POSTing to localhost cannot."""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from tools.runtime.eventing.delivery import FunctionUnavailable
from tools.runtime.serving.function_process import Hold

TOKEN_HEADER = "X-Saga-Control-Token"  # noqa: S105 (a header name)
# How long a started function is held at most when its sender never says it is done
# (killed): longer than `saga send`'s HTTP timeout (tools/ops/send.py).
HOLD_S = 120.0


class Pausable(Protocol):
    """A KafkaSourceDispatcher, as far as the control channel is concerned."""

    @property
    def paused(self) -> bool: ...

    def pause(self, timeout: float = 30.0) -> bool: ...

    def resume(self) -> None: ...


class Startable(Protocol):
    """A FunctionProcess, as far as the control channel is concerned."""

    def hold(self, seconds: float) -> Hold: ...

    def release_hold(self, hold: str) -> bool: ...


class ControlServer:
    def __init__(self, sources: Mapping[str, tuple[Pausable, str]],
                 functions: Mapping[str, Startable] | None = None) -> None:
        """`sources`: name -> (dispatcher, consumer group); `functions`: name -> process."""
        self.token = secrets.token_urlsafe(24)
        self._sources = dict(sources)
        self._functions = dict(functions or {})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="runtime-control", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ControlServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.split("/") if p]
        if method == "GET" and parts == ["sources"]:
            return 200, {name: {"paused": source.paused, "consumer_group": group}
                         for name, (source, group) in self._sources.items()}
        if method == "POST" and len(parts) == 3 and parts[0] == "sources":
            return self._source(parts[1], parts[2])
        if method == "POST" and len(parts) in (3, 4) and parts[0] == "functions":
            return self._function(parts[1], parts[2:])
        return 404, {"error": f"no such endpoint: {method} {path}"}

    def _source(self, name: str, action: str) -> tuple[int, dict[str, Any]]:
        entry = self._sources.get(name)
        if entry is None:
            return 404, {"error": f"no KafkaSource {name!r}", "sources": sorted(self._sources)}
        source = entry[0]
        if action == "pause":
            if source.pause():
                return 200, {"paused": True}
            return 504, {"error": "the source did not leave its group in time"}
        if action == "resume":
            source.resume()
            return 200, {"paused": False}
        return 404, {"error": f"no such endpoint: POST /sources/{name}/{action}"}

    def _function(self, name: str, action: list[str]) -> tuple[int, dict[str, Any]]:
        function = self._functions.get(name)
        if function is None:
            return 404, {"error": f"no function {name!r}", "functions": sorted(self._functions)}
        if action == ["start"]:
            try:
                hold = function.hold(HOLD_S)
            except FunctionUnavailable as exc:
                return 503, {"error": str(exc)}
            return 200, {"function": name, "port": hold.port,
                         "url": f"http://127.0.0.1:{hold.port}", "hold": hold.id,
                         "hold_s": HOLD_S, "cold_start": hold.cold_start}
        if len(action) == 2 and action[0] == "release":
            if function.release_hold(action[1]):
                return 200, {"released": True}
            return 404, {"error": f"{name} has no hold {action[1]!r} (released, or expired "
                                  f"after {HOLD_S:.0f} s)"}
        return 404, {"error": f"no such endpoint: POST /functions/{name}/{'/'.join(action)}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                given = self.headers.get(TOKEN_HEADER, "")
                if not hmac.compare_digest(given, server.token):
                    status, body = 403, {"error": f"missing or wrong {TOKEN_HEADER}"}
                else:
                    status, body = server._answer(method, self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the console shows pause/resume lines from the dispatchers

        return Handler


class ControlError(RuntimeError):
    """The runtime's control channel refused or could not be reached."""


@dataclass(frozen=True)
class Started:
    """A function the runtime started (or found running) and holds for one request."""

    function: str
    url: str
    hold: str
    cold_start: bool


class ControlClient:
    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self._url, self._token, self._timeout = url.rstrip("/"), token, timeout

    def sources(self) -> dict[str, Any]:
        return self._call("GET", "/sources")

    def pause(self, source: str) -> None:
        self._call("POST", f"/sources/{source}/pause")

    def resume(self, source: str) -> None:
        self._call("POST", f"/sources/{source}/resume")

    def start_function(self, function: str) -> Started:
        """Start `function` unless it runs; returns once it answers (a cold start's wait)."""
        answer = self._call("POST", f"/functions/{function}/start")
        return Started(function, str(answer["url"]), str(answer["hold"]),
                       bool(answer["cold_start"]))

    def release_function(self, started: Started) -> None:
        """The request is over: the function's idle period starts now."""
        self._call("POST", f"/functions/{started.function}/release/{started.hold}")

    def _call(self, method: str, path: str) -> dict[str, Any]:
        # The URL is our own loopback control port from runtime-state.json.
        request = urllib.request.Request(  # noqa: S310
            self._url + path, method=method, data=b"" if method == "POST" else None,
            headers={TOKEN_HEADER: self._token})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as reply:  # noqa: S310
                answer: dict[str, Any] = json.loads(reply.read())
                return answer
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise ControlError(f"{method} {path}: HTTP {exc.code} {detail}") from None
        except OSError as exc:
            raise ControlError(f"the runtime's control port {self._url} did not answer "
                               f"({exc}); is `saga up` still running?") from None
