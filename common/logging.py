"""ECS JSON logging on stdout (ecs-logging), the same lines a cluster ships to Elasticsearch.

Every record carries service.name and ecs.version; a redaction filter scrubs anything that
looks like a JWT or a password in a URL from messages and error texts, so secrets never
reach a log even when an exception quotes them. log_event's lines, the bulk, are written
without a LogRecord when nothing but our handler would see them (common/ecs_line.py), with
the same bytes and the same redaction.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import ecs_logging

from common import ecs_line

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+):[^@\s]+@", re.I)
_KEY_VALUE_SECRET = re.compile(r"(?P<key>password|passwd|secret|token)=\S+", re.I)

# The ECS version every line declares: the one elk/ targets. Its index template composes
# Elasticsearch 8.15's ecs@mappings, which follow ECS 8.11, and names the version in
# component-template-mappings.json (_meta.ecs_version); tests/contract/test_elk_template.py
# keeps the two equal. ECS requires the field in every event; a shipper that adds none
# (Logstash reading the files, an OpenTelemetry collector) must still deliver ECS documents.
ECS_VERSION = "8.11.0"

# ecs-logging would write its own ecs.version (the 1.6.0 its field set dates from); ours is
# written by EcsFormatter.format instead, on both of its paths.
_EXCLUDED = ["log.original", "log.origin", "process", "ecs.version", "log.logger"]


class EcsFormatter(ecs_logging.StdlibFormatter):
    """ecs-logging's document, built in one pass for the lines we write: the dotted extras
    are nested straight into the result, not de-dotted and merged field by field
    (docs/benchmarks.md, "One-pass ECS lines"). Anything unusual (an exception, a stack, a
    dict-valued or clashing extra, an Elastic APM field) goes through the library unchanged;
    tests hold both paths to the same output: @timestamp, log.level, message and
    ecs.version (one constant piece of text) first, the rest sorted."""

    # json.dumps with options builds an encoder per call, and the library makes four calls
    # a line; one prebuilt encoder writes the same text (objects JSON cannot hold: repr).
    _encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr)
    _ecs_version = f',"ecs.version":{json.dumps(ECS_VERSION)}'

    def format(self, record: logging.LogRecord) -> str:
        doc = self.format_to_ecs(record)
        encode, log_fields = self._encoder.encode, doc["log"]
        first = (("@timestamp", doc.pop("@timestamp")), ("log.level", log_fields.pop("level")),
                 ("message", doc.pop("message")))
        if not log_fields:
            del doc["log"]
        head = ",".join(f'"{name}":{encode(value)}' for name, value in first)
        version = self._ecs_version
        return f"{{{head}{version},{encode(doc)[1:]}" if doc else f"{{{head}{version}}}"

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        if record.exc_info or record.stack_info:
            return super().format_to_ecs(record)
        result: dict[str, Any] = {"@timestamp": self._record_timestamp(record),
                                  "log": {"level": record.levelname.lower()}}
        standard = self._LOGRECORD_DICT
        for name, value in vars(record).items():
            if name in standard or value is None:
                continue
            if isinstance(value, dict) or name.startswith("elasticapm_"):
                return super().format_to_ecs(record)
            if self._is_field_excluded(name):
                continue
            *parents, leaf = name.split(".")
            node = result
            for part in parents:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    return super().format_to_ecs(record)  # "a" and "a.b" both set
                node = child
            if isinstance(node.get(leaf), dict):
                return super().format_to_ecs(record)
            node[leaf] = value
        result["message"] = record.getMessage()
        return result


def redact(text: str) -> str:
    # Every pattern needs one of these; most fields (ids, event types) have none, and this
    # runs on every field of every line.
    if "eyJ" not in text and "@" not in text and "=" not in text:
        return text
    text = _JWT.sub("[REDACTED-JWT]", text)
    text = _URL_PASSWORD.sub(r"\g<scheme>:***@", text)
    return _KEY_VALUE_SECRET.sub(r"\g<key>=***", text)


class _ServiceAndRedaction(logging.Filter):
    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "service.name"):
            setattr(record, "service.name", self.service_name)
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        # Every ECS field a caller passed (dotted names: url.path, error.message, labels.*)
        # is redacted too: a token can arrive in a request path or an event attribute.
        for name, value in list(vars(record).items()):
            if "." in name and isinstance(value, str):
                setattr(record, name, redact(value))
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted tracebacks would carry the exception text verbatim.
            exc = record.exc_info[1]
            setattr(record, "error.type", type(exc).__name__)
            setattr(record, "error.message", redact(str(exc)))
            record.exc_info = None
            record.exc_text = None
        return True


class EcsHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs: EcsFormatter behind the service and
    redaction filter; and write_event, log_event's line written without a LogRecord
    (common/ecs_line.py: the same bytes as the formatter's; docs/benchmarks.md, "A cheaper
    log line")."""

    _saga_ecs = True  # one of ours: configure_logging replaces it, benches find it

    def __init__(self, stream: TextIO, service_name: str) -> None:
        super().__init__(stream)
        self.setFormatter(EcsFormatter(exclude_fields=_EXCLUDED))
        self.addFilter(_ServiceAndRedaction(service_name))
        self._service = service_name

    def write_event(self, level: int, message: str, action: str, outcome: str,
                    fields: Mapping[str, Any]) -> bool:
        """Write one event line as the formatter would; False, having written nothing, when
        the line needs the formatter's general path (ecs_line.template)."""
        values = (action, outcome, self._service, *fields.values())
        if None in values:  # as log_event's extra: a field that is None is not written
            if action is None or outcome is None:
                return False
            fields = {name: value for name, value in fields.items() if value is not None}
            values = (action, outcome, self._service, *fields.values())
        found = ecs_line.template(tuple(fields))
        # A dict value is de-dotted and merged by the library (EcsFormatter's general path).
        if found is None or type(message) is not str or dict in map(type, values):
            return False
        text, body = ecs_line.encode_text(message), ecs_line.fill(found, values)
        # Every shape redact() looks for needs "eyJ", "@" or "=", and JSON encoding neither
        # adds nor escapes those: without them in the text, no value needs redacting.
        probe = text + body
        if "eyJ" in probe or "@" in probe or "=" in probe:
            values = tuple(redact(v) if isinstance(v, str) else v for v in values)
            text, body = ecs_line.encode_text(redact(message)), ecs_line.fill(found, values)
        line = (f'{{"@timestamp":"{ecs_line.stamp(time.time())}",'
                f'"log.level":{_level_json(level)},"message":{text}'
                f"{EcsFormatter._ecs_version},{body}\n")
        try:
            with self.lock:  # type: ignore[union-attr]
                self.stream.write(line)
                self.stream.flush()
        except Exception:  # as StreamHandler.emit: reported on stderr, never raised
            self.handleError(logging.makeLogRecord({"msg": message, "levelno": level}))
        return True


_LEVELS: dict[int, str] = {}


def _level_json(level: int) -> str:
    found = _LEVELS.get(level)
    if found is None:
        found = _LEVELS[level] = ecs_line.encode_text(logging.getLevelName(level).lower())
    return found


def configure_logging(service_name: str, level: str = "INFO") -> None:
    """Route the root logger to stdout as ECS JSON. Idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_saga_ecs", False):
            root.removeHandler(handler)
    root.addHandler(EcsHandler(sys.stdout, service_name))
    root.setLevel(level)
    # Library chatter (psycopg pool, werkzeug access log) is not part of the contract.
    for noisy in ("werkzeug", "urllib3", "httpx", "httpx2", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_event(
    logger: logging.Logger,
    message: str,
    *,
    action: str,
    outcome: str,
    level: int = logging.INFO,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """One ECS line: `fields` use dotted ECS names, e.g. {"labels.order_id": "..."}."""
    if not logger.isEnabledFor(level):
        return
    handler = _sole_ecs_handler(logger, level)
    if handler is not None and handler.write_event(level, message, action, outcome, fields or {}):
        return
    extra: dict[str, Any] = {"event.action": action, "event.outcome": outcome}
    extra.update({k: v for k, v in (fields or {}).items() if v is not None})
    logger.log(level, message, extra=extra)


def _sole_ecs_handler(logger: logging.Logger, level: int) -> EcsHandler | None:
    """Our handler when it is the only one a record of `logger` would reach and nothing
    else could see or change the record (a logger filter, a test's capture handler, a
    NullHandler that silences a subtree): then log_event may write the line itself."""
    if logger.filters or logger.disabled:
        return None
    found: list[logging.Handler] = []
    node: logging.Logger | None = logger
    while node is not None:
        if node.handlers:
            found += node.handlers
        if not node.propagate:
            break
        node = node.parent
    if len(found) != 1 or type(found[0]) is not EcsHandler:
        return None
    handler = found[0]  # with no filter but its own
    return handler if handler.level <= level and len(handler.filters) == 1 else None
