"""Our one-pass ECS formatter writes, byte for byte, what ecs-logging's formatter writes,
plus our ecs.version right after the message (ecs-logging's own would say 1.6.0)."""

from __future__ import annotations

import copy
import json
import logging
import sys
from typing import Any

import ecs_logging
import pytest

from common.logging import _EXCLUDED, ECS_VERSION, EcsFormatter

STEP_LINE = {
    "event.action": "saga.step.completed", "event.outcome": "success",
    "event.duration": 3456789, "labels.order_id": "8c6c1c3e", "labels.saga_step": "reserve",
    "cloudevents.id": "0b6f", "cloudevents.type": "shop.order.created.v1",
    "cloudevents.source": "/saga/api", "trace.id": "4bf9", "span.id": "00f0",
    "service.name": "inventory", "labels.emitted": None,
}


def _record(message: str = "inventory handled shop.order.created.v1", *,
            level: int = logging.INFO, extra: dict[str, Any] | None = None,
            exc_info: Any = None, args: tuple[Any, ...] = ()) -> logging.LogRecord:
    record = logging.LogRecord("saga.step", level, __file__, 10, message, args, exc_info)
    for name, value in (extra or {}).items():
        setattr(record, name, value)
    return record


VERSION = f',"ecs.version":"{ECS_VERSION}"'


def _both(make: Any) -> tuple[str, str]:
    """Both formatters on copies of one record (same time, same fields); ours without the
    ecs.version it adds, which every line must carry exactly once, fourth."""
    record = make()
    ours = EcsFormatter(exclude_fields=_EXCLUDED).format(copy.copy(record))
    theirs = ecs_logging.StdlibFormatter(exclude_fields=_EXCLUDED).format(copy.copy(record))
    doc = json.loads(ours)
    assert list(doc)[:4] == ["@timestamp", "log.level", "message", "ecs.version"]
    assert doc["ecs.version"] == ECS_VERSION and ours.count(VERSION) == 1
    return ours.replace(VERSION, "", 1), theirs


@pytest.mark.parametrize("make", [
    pytest.param(lambda: _record(extra=STEP_LINE), id="a handled event"),
    pytest.param(lambda: _record("refused %s", level=logging.WARNING, args=("x",), extra={
        **STEP_LINE, "event.action": "saga.step.failed", "http.response.status_code": 422,
        "error.type": "bad event", "error.message": "näive «quotes» \"and\" \\ slashes"}),
        id="a refusal with non-ASCII and escapes"),
    pytest.param(lambda: _record("plain", extra={"service.name": "api"}), id="no extras"),
    pytest.param(lambda: _record("POST /orders/x/pay 202", extra={
        "service.name": "api", "span.id": "00f0", "trace.id": "4bf9",
        "span.links": [{"trace": {"id": "0af7"}, "span": {"id": "b7ad"}}]}),
        id="a list of objects (span links)"),
    pytest.param(lambda: _record(extra={"color_message": "x", "service.name": "api"}),
                 id="a library's undotted extra"),
    pytest.param(lambda: _record(extra={"http": {"request": {"method": "GET"}},
                                        "service.name": "api"}), id="a dict-valued extra"),
    pytest.param(lambda: _record(extra={"process.pid": 1, "log.logger": "x",
                                        "ecs.version": "1.0.0", "service.name": "api"}),
                 id="excluded extras"),
    pytest.param(lambda: _record(extra={"labels.count": 3, "labels.ratio": 0.5,
                                        "labels.flag": True, "service.name": "api",
                                        "labels.when": object}), id="non-string values"),
])
def test_same_line_as_ecs_logging(make: Any) -> None:
    ours, theirs = _both(make)
    assert ours == theirs
    assert list(json.loads(ours))[:3] == ["@timestamp", "log.level", "message"]


def test_an_exception_goes_through_the_library() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    ours, theirs = _both(lambda: _record("failed", level=logging.ERROR, exc_info=exc_info,
                                         extra={"service.name": "api"}))
    assert ours == theirs
    assert json.loads(ours)["error"]["type"] == "ValueError"


def test_a_clash_fails_as_the_library_does() -> None:
    # "labels" as a value and "labels.x" as a field cannot both be written.
    record = _record(extra={"labels": "flat", "labels.x": "nested"})
    with pytest.raises(TypeError):
        EcsFormatter(exclude_fields=_EXCLUDED).format(record)
