"""How every CloudEvents function is served: over ASGI (FUNCTION_USE_ASGI=true in
knative/*.yaml: the function's `@aio.http` coroutine as the ASGI app itself,
common/asgi_app.py, run by uvicorn in the function's one process, common/serve.py), as an
HTTP function that speaks binary-mode CloudEvents itself.

Why not functions-framework's own `cloud_event` signature: under gunicorn's thread worker,
Flask and Werkzeug, the server cost ~1 ms of CPU per event before any of our code ran
(measured: 980 us for an empty function, against 350 us on uvicorn with httptools and
uvloop), and with eight deliveries per order that was a quarter of every step function's
CPU. Its ASGI `cloud_event` flavour answers every exception with a 500 and has no way to
add the probe routes, so Knative's rules (4xx for a malformed event, which is not retried;
5xx for a fault, which is) could not be kept. Here they are, in one place:

- POST, any path: parse the CloudEvent (malformed: 400; body over the limit: 413), run the
  handler on a worker thread (the step runtime is synchronous: SQLAlchemy, the producer),
  at most THREADS at a time, like gunicorn's THREADS and Knative's containerConcurrency;
  a Problem it raises becomes its status and an RFC 9457 body, anything else a 500.
- GET /livez and /readyz: the Knative probes (common/probes.py).
- anything else: 405.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cloudevents.exceptions import GenericException as CloudEventError
from cloudevents.http import CloudEvent, from_http
from starlette.requests import Request
from starlette.responses import Response

from common import probes
from common.problems import PROBLEM_JSON, Problem, problem_body
from common.settings import get_settings

log = logging.getLogger("saga.server")

# The handler gets the event and the request's headers and body exactly as they arrived
# (the dlq stores them).
EventHandler = Callable[[CloudEvent, Mapping[str, str], bytes], None]
# For a request that is no CloudEvent (headers, body, why): what the dlq does with a dead
# letter it cannot parse. Without one, such a request is refused with 400.
MalformedHandler = Callable[[Mapping[str, str], bytes, str], None]
Endpoint = Callable[[Request], Awaitable[Response]]


def event_endpoint(handle: EventHandler, *, max_body: int,
                   on_malformed: MalformedHandler | None = None) -> Endpoint:
    """The ASGI endpoint of one function (its main.py awaits it from an aio.http function)."""
    # THREADS workers bound the handlers running at once, as anyio's CapacityLimiter did,
    # for 0.08 M fewer instructions per event (docs/benchmarks.md, "Serving without
    # functions-framework's Starlette app"). Made on first use (settings are read then);
    # not tied to a loop, so a test client's loop per request shares it. Nothing here
    # reads a contextvar, which run_in_executor, unlike anyio, does not carry over.
    pools: list[ThreadPoolExecutor] = []

    async def in_thread(call: Callable[..., Any], *args: Any) -> Any:
        if not pools:
            pools.append(ThreadPoolExecutor(get_settings().threads, "event"))
        return await asyncio.get_running_loop().run_in_executor(pools[0], call, *args)

    async def endpoint(request: Request) -> Response:
        if request.method == "GET" and request.url.path == probes.LIVENESS_PATH:
            return _probe(probes.live_answer())
        if request.method == "GET" and request.url.path == probes.READINESS_PATH:
            return _probe(await in_thread(probes.ready_answer))
        if request.method != "POST":
            return problem(405, "method not allowed", "events are POSTed")
        body = await _read_body(request, max_body)
        if body is None:
            return problem(413, "event too large", f"the limit is {max_body} bytes")
        return await deliver(dict(request.headers), body, request.url.path)

    async def deliver(headers: dict[str, str], body: bytes, path: str) -> Response:
        try:
            event = from_http(headers, body)
            work: tuple[Any, ...] = (handle, event, headers, body)
        except CloudEventError as exc:
            if on_malformed is None:
                return problem(400, "malformed CloudEvent", str(exc)[:500])
            work = (on_malformed, headers, body, str(exc))
        try:
            await in_thread(*work)
        except Problem as exc:
            return problem(exc.code or 500, exc.title, exc.detail, **exc.extra)
        except Exception as exc:  # a bug: logged here, retried by the KafkaSource
            log.exception("unhandled error on %s", path)
            return problem(500, "function failed", type(exc).__name__)
        return Response(b"", status_code=200)

    return endpoint


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    return Response(problem_body(status, title, detail, **extra), status_code=status,
                    media_type=PROBLEM_JSON)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _probe(answer: probes.Answer) -> Response:
    status, body = answer
    return Response(body, status_code=status, media_type="application/json",
                    headers=probes.HEADERS)
