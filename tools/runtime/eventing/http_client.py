"""A small keep-alive HTTP/1.1 client for POSTing events to local functions: one POST, a
response with Content-Length, chunked encoding or read-to-close, connections pooled per
address. Every microsecond the KafkaSource emulation spends is taken from the functions on
the same cores; what the libraries would cost instead: docs/benchmarks.md
(`python -m tools.bench.http_clients`). Thread-safe: the pool is guarded by a lock and a
connection is used by one thread at a time."""

from __future__ import annotations

import collections
import select
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass


class NoResponse(OSError):
    """The request got no (complete) HTTP response: refused, reset, timed out."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


class _Connection:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.used = False
        self.answered = False  # any byte of a reply arrived for the current request
        self.idle_since = time.monotonic()

    def dropped(self) -> bool:
        """The server closed it while it sat in the pool (readable idle socket = EOF).

        Only checked after a second of idleness: servers close idle connections after
        their keep-alive timeout (gunicorn: 2 s), and a busy connection skips a syscall
        per request. Any other close is caught by post()'s one retry."""
        if time.monotonic() - self.idle_since < 1.0:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        self.sock.close()

    def _recv(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoResponse("timed out")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise NoResponse("timed out") from None
        self.answered = self.answered or bool(chunk)
        return chunk

    def read_until(self, marker: bytes, deadline: float) -> bytes:
        while marker not in self.buffer:
            chunk = self._recv(deadline)
            if not chunk:
                raise NoResponse("connection closed by the server")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def read_exactly(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            chunk = self._recv(deadline)
            if not chunk:
                raise NoResponse("connection closed mid-body")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_to_close(self, deadline: float) -> bytes:
        while chunk := self._recv(deadline):
            self.buffer += chunk
        data, self.buffer = self.buffer, b""
        return data


class HttpClient:
    def __init__(self, max_idle_per_address: int = 64) -> None:
        self._idle: dict[tuple[str, int], collections.deque[_Connection]] = {}
        self._max_idle = max_idle_per_address
        self._lock = threading.Lock()

    def post(self, host: str, port: int, path: str, headers: Mapping[str, str], body: bytes,
             timeout: float) -> HttpReply:
        """POST and read the whole reply; raises NoResponse if there is none."""
        deadline = time.monotonic() + timeout
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}",
                 f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        while True:
            connection = self._take(host, port, timeout)
            reused = connection.used
            connection.used, connection.answered = True, False
            try:
                connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
                connection.sock.sendall(request)
                reply, keep = self._read_reply(connection, deadline)
            except OSError as exc:  # NoResponse included
                connection.close()
                # A pooled connection the server closed just as it was reused: nothing
                # was answered, so try once more on a fresh one.
                if reused and not connection.answered and time.monotonic() < deadline:
                    continue
                if isinstance(exc, NoResponse):
                    raise
                raise NoResponse(f"{type(exc).__name__}: {exc}") from exc
            if keep:
                self._give_back(host, port, connection)
            else:
                connection.close()
            return reply

    def _read_reply(self, connection: _Connection, deadline: float) -> tuple[HttpReply, bool]:
        while True:
            head = connection.read_until(b"\r\n\r\n", deadline).decode("latin-1")
            status_line, _, header_text = head.partition("\r\n")
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise NoResponse(f"not an HTTP response: {status_line[:80]!r}")
            status = int(parts[1])
            headers: dict[str, str] = {}
            for line in header_text.split("\r\n"):
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue  # an interim response (100 Continue): the real one follows
            break
        keep = (headers.get("connection", "").lower() != "close"
                and parts[0] != "HTTP/1.0")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked(connection, deadline)
        elif "content-length" in headers:
            body = connection.read_exactly(int(headers["content-length"]), deadline)
        elif status in (204, 304):
            body = b""
        else:
            body, keep = connection.read_to_close(deadline), False
        return HttpReply(status, headers, body), keep

    @staticmethod
    def _read_chunked(connection: _Connection, deadline: float) -> bytes:
        body = b""
        while True:
            size = int(connection.read_until(b"\r\n", deadline).split(b";")[0], 16)
            if size == 0:
                while connection.read_until(b"\r\n", deadline):  # trailers, then blank line
                    pass
                return body
            body += connection.read_exactly(size, deadline)
            connection.read_exactly(2, deadline)

    def _take(self, host: str, port: int, timeout: float) -> _Connection:
        with self._lock:
            idle = self._idle.get((host, port))
            while idle:
                connection = idle.pop()
                if not connection.dropped():
                    return connection
                connection.close()
        try:
            return _Connection(host, port, timeout)
        except OSError as exc:
            raise NoResponse(f"cannot connect to {host}:{port}: {exc}") from exc

    def _give_back(self, host: str, port: int, connection: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault((host, port), collections.deque())
            if len(idle) < self._max_idle:
                connection.idle_since = time.monotonic()
                idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            for idle in self._idle.values():
                for connection in idle:
                    connection.close()
            self._idle.clear()
