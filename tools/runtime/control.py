"""The running runtime's control channel: a loopback HTTP port, recorded in
runtime-state.json ("control": {"url", "token"}), through which `saga replay --pause` asks
a KafkaSource to leave its consumer group and, once the offsets changed, to join it again:
GET /sources; POST /sources/<name>/pause (200 once it has left the group, 504 if it did
not); POST /sources/<name>/resume. Only 127.0.0.1 is bound and every request must carry
the state file's random token (X-Saga-Control-Token), so neither another user's process
nor a web page POSTing to localhost can pause a source."""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

TOKEN_HEADER = "X-Saga-Control-Token"  # noqa: S105 (a header name)


class Pausable(Protocol):
    """A KafkaSourceDispatcher, as far as the control channel is concerned."""

    @property
    def paused(self) -> bool: ...

    def pause(self, timeout: float = 30.0) -> bool: ...

    def resume(self) -> None: ...


class ControlServer:
    def __init__(self, sources: Mapping[str, tuple[Pausable, str]]) -> None:
        """`sources`: name -> (dispatcher, consumer group)."""
        self.token = secrets.token_urlsafe(24)
        self._sources = dict(sources)
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
            entry = self._sources.get(parts[1])
            if entry is None:
                return 404, {"error": f"no KafkaSource {parts[1]!r}",
                             "sources": sorted(self._sources)}
            source = entry[0]
            if parts[2] == "pause":
                if source.pause():
                    return 200, {"paused": True}
                return 504, {"error": "the source did not leave its group in time"}
            if parts[2] == "resume":
                source.resume()
                return 200, {"paused": False}
        return 404, {"error": f"no such endpoint: {method} {path}"}

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


class ControlClient:
    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self._url, self._token, self._timeout = url.rstrip("/"), token, timeout

    def sources(self) -> dict[str, Any]:
        return self._call("GET", "/sources")

    def pause(self, source: str) -> None:
        self._call("POST", f"/sources/{source}/pause")

    def resume(self, source: str) -> None:
        self._call("POST", f"/sources/{source}/resume")

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
