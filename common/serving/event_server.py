"""How every CloudEvents function is served: its `@aio.http` coroutine, run by uvicorn
(serve.py, asgi_app.py), speaks binary-mode CloudEvents itself, so Knative's rules hold:

- POST, any path: parse the CloudEvent (malformed: 400; body over the limit: 413), run the
  handler on one of THREADS worker threads (like Knative's containerConcurrency); a Problem
  it raises becomes its status and an RFC 9457 body, anything else a 500.
- GET /livez and /readyz: the Knative probes (probes.py).
- anything else: 405.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cloudevents.exceptions import GenericException as CloudEventError
from cloudevents.http import CloudEvent
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from common.problems import PROBLEM_JSON, Problem
from common.resources import Resources
from common.serving import binary_event, probes
from common.serving.worker_threads import WorkerThreads

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
    # The handlers' threads (worker_threads.py), made on first use: the settings are read
    # when the process serves, not when main.py is imported.
    pools: list[WorkerThreads] = []

    async def in_thread(call: Callable[..., Any], *args: Any) -> Any:
        if not pools:
            pools.append(WorkerThreads(resources.settings.threads, "event"))
        return await pools[0].run(call, *args)

    async def endpoint(request: Request) -> Response:
        # The scope and receive() directly: Starlette's url and headers properties parse
        # what a delivery never needs (docs/benchmarks.md, "Serving a delivery").
        scope = request.scope
        method, path = scope["method"], scope["path"]
        if method == "GET" and path == probes.LIVENESS_PATH:
            return _probe(probes.live_answer())
        if method == "GET" and path == probes.READINESS_PATH:
            return _probe(await in_thread(probes.ready_answer, resources))
        if method != "POST":
            return _problem(405, "method not allowed", "events are POSTed")
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"]}
        body = await _read_body(request, headers.get("content-length", ""), max_body)
        if body is None:
            return _problem(413, "event too large", f"the limit is {max_body} bytes")
        return await deliver(headers, body, path)

    async def deliver(headers: dict[str, str], body: bytes, path: str) -> Response:
        try:
            event = binary_event.parse(headers, body)
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
        return _OK

    return endpoint


# Every delivery that succeeds gets the same answer: one response, rendered once.
_OK = Response(b"", status_code=200)


def problem_response(problem: Problem) -> Response:
    """A Problem as Starlette's response (the ASGI stack's renderer)."""
    return Response(problem.body(), status_code=problem.status, media_type=PROBLEM_JSON,
                    headers=problem.headers or None)


def _problem(status: int, title: str, detail: str) -> Response:
    return problem_response(Problem(status, title, detail))


async def _read_body(request: Request, declared: str, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (read no further than that). As
    Request.stream() does, a client gone before the end raises ClientDisconnect."""
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size, more = [], 0, True
    while more:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk, more = message.get("body", b""), message.get("more_body", False)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _probe(answer: probes.Answer) -> Response:
    status, body = answer
    return Response(body, status_code=status, media_type="application/json",
                    headers=probes.HEADERS)
