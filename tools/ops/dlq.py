"""`saga dlq`: the dead letters the dlq function stored (messaging.dead_letters), and
re-driving them once their cause is fixed. A re-drive produces the stored event again as it
was (id, attributes, data, key) to its type's topic, so the function that failed gets it
again and the topic's other consumers skip it by their inbox; Knative's knativeerror*
extensions are stripped, and `sagaredrive` names the letter and its re-drive number
(common/dead_letters.py, which the console shares), so a failed re-drive is a new letter.
Only waiting letters are re-driven unless forced; a resolved or re-driven one is refused,
naming why."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from confluent_kafka import KafkaError, Message, Producer
from sqlalchemy import Connection, create_engine, pool, select, update
from sqlalchemy.engine import Row

from common import tables as t
from common.dead_letters import (
    ERROR_EXTENSIONS,
    failed_again_as,
    mark_redriven,
    redrive_attributes,
    redrive_key,
    redrive_of,
    state_of,
    topic_of,
    waiting,
    why_not_waiting,
)
from common.pg import tx_in
from tools.infra.kafka_clients import tool_producer_config
from tools.ops.context import OpsContext, OpsError

_dl = t.dead_letters


@contextmanager
def _connect(ctx: OpsContext, *, write: bool = False) -> Iterator[Connection]:
    engine = create_engine(ctx.require_database().sqlalchemy_url(), poolclass=pool.NullPool)
    try:
        with engine.begin() if write else engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def list_dead_letters(ctx: OpsContext, *, everything: bool = False) -> list[dict[str, Any]]:
    """Dead letters waiting for an operator (letters.waiting), or all."""
    query = select(_dl).order_by(_dl.c.id)
    if not everything:
        query = query.where(waiting())
    with _connect(ctx) as conn:
        return [summary(ctx, row) for row in conn.execute(query)]


def show(ctx: OpsContext, dead_letter_id: int) -> dict[str, Any]:
    row = _rows(ctx, [dead_letter_id])[0]
    attributes = dict(row.attributes)
    with _connect(ctx) as conn:
        again = failed_again_as(tx_in(conn), row.id)
    return summary(ctx, row) | {
        "failed_again_as": again,
        "attributes": {k: v for k, v in attributes.items() if k not in ERROR_EXTENSIONS},
        "error": {"code": row.error_code, "destination": row.error_dest,
                  "data": row.error_data},
        "data": decode_data(row.data, attributes.get("datacontenttype"))}


def summary(ctx: OpsContext, row: Row[Any]) -> dict[str, Any]:
    attributes = row.attributes or {}
    return {"id": row.id, "created_at": row.created_at.isoformat(),
            "event_id": row.event_id, "type": row.event_type,
            "order_id": attributes.get("partitionkey") or row.subject,
            "error_code": row.error_code, "failed_at": function_of(ctx, row.error_dest),
            "state": state_of(redriven=row.redriven_at is not None, resolved=row.resolved),
            "redrive_of": redrive_of(attributes),
            "redrive_count": row.redrive_count,
            "redriven_at": row.redriven_at.isoformat() if row.redriven_at else None,
            "resolved": row.resolved}


def redrive(ctx: OpsContext, ids: Sequence[int] | None, *, topic: str | None = None,
            force: bool = False) -> list[tuple[int, str]]:
    """Produce each dead letter again (ids None: every one waiting); (id, topic) of each.
    A resolved or already re-driven letter is refused unless `force`. Marked re-driven
    only after the broker acknowledged it."""
    if ids is None:
        with _connect(ctx) as conn:
            rows = list(conn.execute(select(_dl).where(waiting()).order_by(_dl.c.id)))
    else:
        rows = _rows(ctx, ids) if ids else []
        if not force:
            _refuse_handled(ctx, rows)
    records = [(row, record_of(row, topic)) for row in rows]  # all checked before sending
    if not records:
        return []
    producer = Producer(tool_producer_config(ctx.require_kafka()) | {"client.id": "saga-dlq"})
    errors: list[str] = []

    def acked(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(f"{message.topic()}: {error}")

    for _row, (target, key, headers, value) in records:
        producer.produce(target, value=value, key=key, headers=headers, on_delivery=acked)
    if producer.flush(30) or errors:
        raise OpsError(f"the broker did not take every event ({'; '.join(errors) or 'timeout'}"
                       "); nothing was marked re-driven, run the command again")
    with _connect(ctx, write=True) as conn:
        mark_redriven(tx_in(conn), [row.id for row, _ in records])
    return [(row.id, record[0]) for row, record in records]


def _refuse_handled(ctx: OpsContext, rows: Sequence[Row[Any]]) -> None:
    """Only waiting letters are re-driven by default (common.dead_letters.why_not_waiting)."""
    reasons = []
    with _connect(ctx) as conn:
        for row in rows:
            why = why_not_waiting(tx_in(conn), row)
            if why is not None:
                reasons.append(f"{why}; `saga dlq redrive {row.id} --force` sends it anyway")
    if reasons:
        raise OpsError("nothing was re-driven:\n  " + "\n  ".join(reasons))


def resolve(ctx: OpsContext, ids: Sequence[int]) -> None:
    """Mark dead letters as dealt with: they are not re-driven (unless forced)."""
    _rows(ctx, ids)
    with _connect(ctx, write=True) as conn:
        conn.execute(update(_dl).where(_dl.c.id.in_(list(ids))).values(resolved=True))


Record = tuple[str, bytes | None, list[tuple[str, str | bytes | None]], bytes | None]


def record_of(row: Row[Any], topic: str | None = None) -> Record:
    """(topic, key, headers, value) of the letter's next re-drive (binary mode)."""
    topic = topic or topic_of(row.event_type)
    if topic is None:
        raise OpsError(f"dead letter {row.id}: type {row.event_type!r} is not in the "
                       "catalogue, so its topic is unknown: give it with --topic")
    headers: list[tuple[str, str | bytes | None]] = [
        ("content-type" if name == "datacontenttype" else f"ce_{name}", value.encode())
        for name, value in sorted(redrive_attributes(row).items())]
    key = redrive_key(row)
    return topic, key.encode() if key else None, headers, row.data


def decode_data(data: bytes | None, content_type: str | None) -> Any:
    if data is None:
        return None
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}
    if content_type is None or "json" in content_type:
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def function_of(ctx: OpsContext, destination: str | None) -> str | None:
    """The function a knativeerrordest URL names: by port for the local runtime, by the
    Service's host name (http://inventory.default.svc.cluster.local) on a cluster."""
    if not destination:
        return None
    try:
        parts = urlsplit(destination)
        port = parts.port
    except ValueError:
        return destination
    for name, doc in ((ctx.runtime or {}).get("functions") or {}).items():
        if parts.hostname in ("127.0.0.1", "localhost") and doc.get("port") == port:
            return str(name)
    host = parts.hostname or destination
    return host if host[0].isdigit() else host.split(".")[0]


def _rows(ctx: OpsContext, ids: Sequence[int]) -> list[Row[Any]]:
    with _connect(ctx) as conn:
        rows = list(conn.execute(select(_dl).where(_dl.c.id.in_(list(ids))).order_by(_dl.c.id)))
    missing = sorted(set(ids) - {row.id for row in rows})
    if missing:
        raise OpsError(f"no dead letter with id {', '.join(map(str, missing))} "
                       "(`saga dlq list --all` shows every one)")
    return rows
