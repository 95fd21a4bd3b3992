"""W3C trace context (traceparent) helpers.

An incoming event's traceparent is the parent of every event it causes: the trace id is
kept and each outgoing event gets a fresh span id. So what one request (or the saga by
itself) causes is one trace across every function; an order is its own trace plus one per
later request that acted on it, linked to the order's (docs/observability.md, "One order,
its traces").
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace, for an event this one causes."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags)


def new_trace() -> TraceContext:
    return TraceContext(secrets.token_hex(16), secrets.token_hex(8))


def parse_traceparent(value: str | None) -> TraceContext | None:
    """The trace context in a traceparent header, or None when it is absent or malformed
    (an invalid header starts a new trace rather than failing the request)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceContext(trace_id, span_id, flags)


def continue_or_start(traceparent: str | None) -> TraceContext:
    """The span this process works in: a child of the caller's, or the root of a new trace."""
    parent = parse_traceparent(traceparent)
    return parent.child() if parent else new_trace()
