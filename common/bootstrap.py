"""What every CloudEvents function's main.py does at import: ECS logging, and the endpoint
that serves its step runtime or ping job on the process's resources (built by main.py,
started and closed by the server: common.serving). Nothing here connects to anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.logging import configure_logging
from common.ping import Job, run_ping
from common.resources import Resources
from common.serving.event_server import Endpoint, event_endpoint
from common.step import MAX_EVENT_BYTES, Handler, StepRuntime, no_store
from common.unit_of_work import StoreFactory


def event_function(name: str, handlers: Mapping[str, Handler], resources: Resources,
                   store: StoreFactory[Any] = no_store) -> Endpoint:
    """The endpoint of a saga step: every event goes through the step runtime."""
    configure_logging(name, resources.settings.log_level)
    step = StepRuntime(name, handlers, resources, store)
    return event_endpoint(lambda event, _headers, _body: step.handle(event), resources,
                          max_body=MAX_EVENT_BYTES)


def ping_function(name: str, job: Job, resources: Resources) -> Endpoint:
    """The endpoint that runs `job` on every ping (malformed requests answer 400, like a
    step's)."""
    configure_logging(name, resources.settings.log_level)
    return event_endpoint(lambda event, _headers, _body: run_ping(event, name, job, resources),
                          resources, max_body=MAX_EVENT_BYTES)
