"""How every CloudEvents function is served: its `@aio.http` coroutine, run by uvicorn
(serve.py, asgi_app.py), speaks binary-mode CloudEvents itself, so Knative's rules hold:

- POST, any path: parse the CloudEvent (malformed: 400; body over the limit: 413), run the
  handler on one of THREADS worker threads (like Knative's containerConcurrency); a Problem
  it raises becomes its status and an RFC 9457 body, anything else a 500.
- GET /livez and /readyz: the Knative probes (probes.py).
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

from common.problems import PROBLEM_JSON, Problem
from common.resources import Resources
from common.serving import probes

log = logging.getLogger("saga.server")

# The handler gets the event and the request's headers and body exactly as they arrived
# (the dlq stores them).
EventHandler = Callable[[CloudEvent, Mapping[str, str], bytes], None]
# For a request that is no CloudEvent (headers, body, why): what the dlq does with a dead
# letter it cannot parse. Without one, such a request is refused with 400.
MalformedHandler = Callable[[Mapping[str, str], bytes, str], None]
Endpoint = Callable[[Request], Awaitable[Response]]


def event_endpoint(handle: EventHandler, resources: Resources, *, max_body: int,
                   on_malformed: MalformedHandler | None = None) -> Endpoint:
    """The ASGI endpoint of one function (its main.py awaits it from an aio.http function)."""
    # A plain executor bounds the handlers running at once (cheaper than anyio's
    # CapacityLimiter: docs/benchmarks.md, "Serving without functions-framework's Starlette
    # app"). Made on first use; not tied to a loop, so a test client's loop per request
    # shares it. Nothing here reads a contextvar, which run_in_executor does not carry over.
    pools: list[ThreadPoolExecutor] = []

    async def in_thread(call: Callable[..., Any], *args: Any) -> Any:
        if not pools:
            pools.append(ThreadPoolExecutor(resources.settings.threads, "event"))
        return await asyncio.get_running_loop().run_in_executor(pools[0], call, *args)

    async def endpoint(request: Request) -> Response:
        if request.method == "GET" and request.url.path == probes.LIVENESS_PATH:
            return _probe(probes.live_answer())
        if request.method == "GET" and request.url.path == probes.READINESS_PATH:
            return _probe(await in_thread(probes.ready_answer, resources))
        if request.method != "POST":
            return _problem(405, "method not allowed", "events are POSTed")
        body = await _read_body(request, max_body)
        if body is None:
            return _problem(413, "event too large", f"the limit is {max_body} bytes")
        return await deliver(dict(request.headers), body, request.url.path)

    async def deliver(headers: dict[str, str], body: bytes, path: str) -> Response:
        try:
            event = from_http(headers, body)
            work: tuple[Any, ...] = (handle, event, headers, body)
        except CloudEventError as exc:
            if on_malformed is None:
                return _problem(400, "malformed CloudEvent", str(exc)[:500])
            work = (on_malformed, headers, body, str(exc))
        try:
            await in_thread(*work)
        except Problem as exc:
            return problem_response(exc)
        except Exception as exc:  # a bug: logged here, retried by the KafkaSource
            log.exception("unhandled error on %s", path)
            return _problem(500, "function failed", type(exc).__name__)
        return Response(b"", status_code=200)

    return endpoint


def problem_response(problem: Problem) -> Response:
    """A Problem as Starlette's response (the ASGI stack's renderer)."""
    return Response(problem.body(), status_code=problem.status, media_type=PROBLEM_JSON,
                    headers=problem.headers or None)


def _problem(status: int, title: str, detail: str) -> Response:
    return problem_response(Problem(status, title, detail))


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
