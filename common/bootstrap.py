"""What every function's main.py does at import: ECS logging, the step runtime, the
endpoint that serves it. Nothing here connects to anything; connections open on the first
event."""

from __future__ import annotations

from collections.abc import Mapping

from common.event_server import Endpoint, event_endpoint
from common.logging import configure_logging
from common.settings import get_settings
from common.step import MAX_EVENT_BYTES, Handler, StepRuntime


def event_function(name: str, handlers: Mapping[str, Handler]) -> Endpoint:
    """The endpoint of a saga step: every event goes through the step runtime."""
    configure_logging(name, get_settings().log_level)
    step = StepRuntime(name, handlers)
    return event_endpoint(lambda event, _headers, _body: step.handle(event),
                          max_body=MAX_EVENT_BYTES)
