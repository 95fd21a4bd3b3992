"""log_event's own line (common/ecs_line.py, EcsHandler.write_event) is, byte for byte, the
line the formatter writes for the same record at the same time; whatever it cannot write
goes through the formatter, and whoever else listens (a capture, a silenced subtree) still
gets a LogRecord."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from common import ecs_line
from common.logging import EcsHandler, log_event

NOW = 1_767_607_200.1239  # 2026-01-05T10:00:00.123Z
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
STEP = {
    "labels.order_id": "8c6c1c3e", "labels.saga_step": "reserve", "cloudevents.id": "0b6f",
    "cloudevents.type": "shop.order.created.v1", "cloudevents.source": "/saga/api",
    "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "span.id": "00f067aa0ba902b7",
    "event.duration": 3456789, "labels.emitted": None,
}


class Lines:
    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream
        self.handler = EcsHandler(stream, "inventory")

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        """Our handler the only one on the root logger (pytest adds its own capture during
        each test's call)."""
        root = logging.getLogger()
        saved = root.handlers[:]
        root.handlers[:] = [self.handler]
        try:
            yield
        finally:
            root.handlers[:] = saved

    def take(self) -> str:
        text = self._stream.getvalue()
        self._stream.seek(0)
        self._stream.truncate()
        return text


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lines]:
    """Our handler writing to a buffer, the root logger at INFO, the clock stopped."""
    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.INFO)
    monkeypatch.setattr(time, "time", lambda: NOW)
    try:
        yield Lines(io.StringIO())
    finally:
        root.setLevel(saved)


def _both(lines: Lines, message: str, fields: dict[str, Any], *, level: int = logging.INFO,
          action: str = "saga.step.completed", outcome: str = "success",
          own_line: bool = True) -> tuple[str, str]:
    """(log_event's line, the formatter's line for the same call); `own_line`: whether
    log_event wrote the first without a LogRecord."""
    log = logging.getLogger("saga.step")
    made: list[str] = []
    make_record = logging.Logger.makeRecord

    def counted(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(self.name)
        return make_record(self, *args, **kwargs)

    with lines.alone(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(logging.Logger, "makeRecord", counted)
        log_event(log, message, action=action, outcome=outcome, level=level, fields=fields)
    assert made == ([] if own_line else ["saga.step"])
    own = lines.take()
    # A second handler anywhere on the way makes log_event go through a LogRecord.
    log.addHandler(logging.NullHandler())
    try:
        with lines.alone():
            log_event(log, message, action=action, outcome=outcome, level=level, fields=fields)
    finally:
        log.handlers.clear()
    return own, lines.take()


@pytest.mark.parametrize(("message", "fields"), [
    pytest.param("inventory handled shop.order.created.v1", STEP, id="a handled event"),
    pytest.param("refused «quotes» \"and\" \\ slashes", {
        **STEP, "http.response.status_code": 422, "error.type": "bad event",
        "error.message": "näive\ttab\u2028sep"}, id="non-ASCII and escapes"),
    pytest.param("POST /orders/x/pay 202", {
        "http.request.method": "POST", "url.path": "/orders/x/pay",
        "http.response.status_code": 202, "user.id": "alice", "trace.id": "4bf9",
        "span.links": [{"trace": {"id": "0af7"}, "span": {"id": "b7ad"}}]}, id="span links"),
    pytest.param("typed", {"labels.count": 3, "labels.ratio": 0.5, "labels.flag": True,
                           "labels.when": object, "labels.big": 2**70}, id="non-string values"),
    pytest.param("no fields", {}, id="no fields"),
    pytest.param(f"token {TOKEN}", {"url.path": f"/x/{TOKEN}",
                                    "labels.dsn": "postgresql://saga:pw@db/saga",
                                    "labels.query": "password=hunter2"}, id="redacted"),
    pytest.param("a%sb%%", {"labels.pct": "100%", "labels.fmt": "%s %d"}, id="percent signs"),
])
def test_the_same_bytes_as_the_formatter(lines: Lines, message: str,
                                         fields: dict[str, Any]) -> None:
    own, general = _both(lines, message, fields)
    assert own == general
    assert own.startswith('{"@timestamp":"2026-01-05T10:00:00.123Z","log.level":"info",')
    assert TOKEN not in own and "hunter2" not in own and ":pw@" not in own


def test_a_warning_is_the_same_too(lines: Lines) -> None:
    own, general = _both(lines, "refused", STEP, level=logging.WARNING,
                         action="saga.step.failed", outcome="failure")
    assert own == general and '"log.level":"warning"' in own


@pytest.mark.parametrize("fields", [
    pytest.param({"event.action": "saga.other"}, id="a base field given again"),
    pytest.param({"color_message": "x"}, id="an undotted name"),
    pytest.param({"log.logger": "x", "labels.a": "b"}, id="an excluded name"),
    pytest.param({"labels.nested": {"a": 1}}, id="a dict value"),
])
def test_what_the_template_cannot_hold_goes_through_the_formatter(
        lines: Lines, fields: dict[str, Any]) -> None:
    own, general = _both(lines, "general", fields, own_line=False)
    assert own == general and own.count("\n") == 1


def test_a_clash_goes_to_the_formatter_which_reports_it(
        lines: Lines, capsys: pytest.CaptureFixture[str]) -> None:
    assert ecs_line.template(("labels", "labels.x")) is None
    assert ecs_line.template(("labels.a.b", "labels.a")) is None
    with lines.alone():  # as StreamHandler does: on stderr, not raised
        log_event(logging.getLogger("saga.step"), "clash", action="a", outcome="success",
                  fields={"labels.x": "flat", "labels.x.y": "nested"})
    assert lines.take() == ""
    assert "TypeError" in capsys.readouterr().err


def test_a_capture_sees_records_and_a_silenced_subtree_writes_nothing(
        lines: Lines, caplog: pytest.LogCaptureFixture) -> None:
    with lines.alone(), caplog.at_level(logging.INFO, logger="saga.step"):
        logging.getLogger().addHandler(caplog.handler)
        log_event(logging.getLogger("saga.step"), "seen", action="saga.step.completed",
                  outcome="success", fields=STEP)
    [record] = [r for r in caplog.records if r.name == "saga.step"]
    assert getattr(record, "labels.order_id") == "8c6c1c3e"
    assert '"order_id":"8c6c1c3e"' in lines.take()  # and our handler wrote it too
    quiet = logging.getLogger("saga.quiet")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    try:
        with lines.alone():
            log_event(quiet, "unseen", action="saga.step.completed", outcome="success")
    finally:
        quiet.handlers.clear()
        quiet.propagate = True
    assert lines.take() == ""


def test_below_the_level_nothing_is_written(lines: Lines) -> None:
    with lines.alone():
        log_event(logging.getLogger("saga.step"), "debug", action="a", outcome="success",
                  level=logging.DEBUG)
    assert lines.take() == ""
