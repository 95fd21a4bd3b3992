"""A binary-mode CloudEvent (what a KafkaSource POSTs) read from its request directly: the
event cloudevents' from_http makes of the same headers and body (the same attributes in the
same order, the same data), without its generic marshalling (docs/benchmarks.md, "Serving
a delivery"). Only the plain case is read here: specversion 1.0, every required attribute
present, a body that is no structured event; for anything else, and so for every error,
parse() is from_http itself, with its exceptions and messages.
tests/unit/test_binary_event.py holds the two to the same events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cloudevents.http import CloudEvent, from_http

# v1.Event's attributes in the order from_http lists them; extensions follow, as they came.
_CONTEXT = ("specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject",
            "time")
_REQUIRED = ("ce-specversion", "ce-id", "ce-source", "ce-type")
# Header names from_http reads into its own bookkeeping rather than into an attribute.
_SPECIAL = ("ce-data", "ce-extensions")
STRUCTURED = "application/cloudevents"


def parse(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """The event of a request whose header names are lower-case (as ASGI gives them)."""
    content_type = headers.get("content-type")
    if (headers.get("ce-specversion") != "1.0"
            or any(name not in headers for name in _REQUIRED)
            or any(name in headers for name in _SPECIAL)
            or (content_type is not None and content_type.startswith(STRUCTURED))):
        return from_http(dict(headers), body)
    context: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith("ce-"):
            (context if name[3:] in _CONTEXT else extensions)[name[3:]] = value
    if content_type is not None:
        context["datacontenttype"] = content_type
    attributes = {name: context[name] for name in _CONTEXT if name in context}
    attributes.update(extensions)
    return CloudEvent(attributes, _data(body))


def _data(body: bytes) -> Any:
    """from_http's data: JSON when the body is JSON, the bytes as they came when not, None
    when there is none."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError):
        return body
    return None if data == "" else data  # from_http: a JSON "" is no data either
