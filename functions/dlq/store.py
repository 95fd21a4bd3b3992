"""Store a dead letter, once. Not a StepRuntime step (a dead letter's type is whatever
failed, even garbage, so no catalogue check and no schema), but the step contract where it
matters: an inbox row ("dlq", common.dead_letters.dedupe_key) in the same transaction as the stored
row, so a re-delivered letter is stored once and each failure of each re-drive is a letter
of its own; and never a 4xx for a CloudEvent it could parse (the dead-letter topic has no
dead-letter sink: a refusal would lose it). Faults answer 5xx, which the KafkaSource retries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from cloudevents.http import CloudEvent
from cloudevents.sdk.converters import is_binary
from psycopg.types.json import Jsonb

from common.cloudevents_kafka import attributes_of
from common.dead_letters import dedupe_key
from common.events.catalogue import DLQ
from common.logging import log_event
from common.pg import Tx
from common.problems import Problem, fault_status
from common.resources import Resources
from functions.dlq import sql

log = logging.getLogger("saga.dlq")

_INT4_MAX = 2**31 - 1


def handle_dead_letter(resources: Resources, event: CloudEvent, raw: bytes | None) -> None:
    store_dead_letter(resources, attributes_of(event), raw)


def store_unparsed(resources: Resources, headers: Mapping[str, str], body: bytes, why: str) -> None:
    """A dead letter that is no valid CloudEvent (a wrong specversion, a missing id: the
    very reason it was refused) is kept too, with its ce- headers as attributes. Its key is
    its id when it has one, else a digest of what arrived, so a redelivery is stored once
    and two different letters are never merged."""
    attributes = {name[3:]: value for name, value in headers.items()
                  if name.lower().startswith("ce-")}
    if not attributes.get("id"):
        # Of what the letter carries (not of transport headers such as an execution id).
        carried = [*sorted(attributes.items()), ("content-type", headers.get("content-type"))]
        digest = hashlib.sha256(json.dumps(carried).encode() + body)
        attributes["id"] = f"unparsed-{digest.hexdigest()[:32]}"
    attributes["sagaunparsed"] = why[:500]
    store_dead_letter(resources, attributes, body or None)


def store_dead_letter(resources: Resources, attributes: dict[str, str],
                      raw: bytes | None) -> None:
    started = time.perf_counter_ns()
    dest = attributes.get("knativeerrordest")
    # A re-driven event that fails again is a new dead letter (common/dead_letters.py: the key).
    key = dedupe_key(attributes)
    row: dict[str, Any] = {
        "event_id": attributes.get("id", ""),
        "event_type": attributes.get("type", ""),
        "source": attributes.get("source", ""),
        "subject": attributes.get("subject"),
        "attributes": Jsonb(attributes),
        "data": raw,
        "error_dest": dest,
        "error_code": error_code(attributes.get("knativeerrorcode")),
        "error_data": error_text(attributes.get("knativeerrordata")),
    }

    def work(tx: Tx) -> bool:
        return tx.one(sql.STORE_DEAD_LETTER, row | {"consumer": DLQ, "key": key}) is not None

    fields: dict[str, Any] = {
        "cloudevents.id": row["event_id"], "cloudevents.type": row["event_type"],
        "cloudevents.source": row["source"],
        "labels.order_id": attributes.get("partitionkey") or row["subject"],
        "labels.error_dest": dest,
        "labels.error_code": attributes.get("knativeerrorcode"),
    }
    try:
        stored = resources.transaction(work)
    except Exception as exc:
        log_event(log, f"dead letter {key} not stored", action="saga.dlq", outcome="failure",
                  level=logging.ERROR, fields=fields | {
                      "error.type": type(exc).__name__, "error.message": str(exc)[:500]})
        raise Problem(fault_status(exc), "dead letter not stored", type(exc).__name__) from None
    log_event(log, f"dead letter {row['event_type']} from {dest}", action="saga.dlq",
              outcome="success", level=logging.WARNING, fields=fields | {
                  "labels.duplicate": str(not stored).lower(),
                  "event.duration": time.perf_counter_ns() - started})


def raw_data(event: CloudEvent, headers: Mapping[str, str], body: bytes) -> bytes | None:
    """The event's data as it arrived: in binary mode the request body itself, otherwise
    (structured mode) the data re-encoded."""
    if is_binary(dict(headers)):
        return body or None
    data = event.get_data()
    if data is None:
        return None
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return json.dumps(data, separators=(",", ":")).encode()


def error_code(value: str | None) -> int | None:
    try:
        code = int(value) if value is not None else None
    except ValueError:
        return None
    return code if code is not None and 0 <= code <= _INT4_MAX else None


def error_text(value: str | None) -> str | None:
    """knativeerrordata carries the failing response body base64-encoded: its text when it
    decodes to UTF-8 (and PostgreSQL can hold it: no NUL), otherwise the value as received."""
    if not value:
        return value
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return value
    return value if "\x00" in text else text
