"""`saga dlq`: the dead letters the dlq function stored (messaging.dead_letters), and
re-driving them once their cause is fixed.

A re-drive produces the stored event again, as it was (same id, attributes, data, key), to
the topic of its type in the catalogue, so the KafkaSource delivers it again to the
function that failed, and to the other consumers of that topic, which find it in their
inbox if they handled it and skip it. Knative's error extensions (knativeerror*) are
stripped: they described the failure, and a function could mistake them for its own
data. The re-drive number travels as the extension `sagaredrive`, so the dlq function
can tell a second failure of the same event from a duplicate of the first. The same id
keeps the re-drive idempotent: an event that had in fact been applied is skipped.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from confluent_kafka import KafkaError, Message, Producer
from sqlalchemy import Engine, create_engine, func, pool, select, update
from sqlalchemy.engine import Row

from common import tables as t
from common.events.catalogue import CATALOGUE
from common.kafka import producer_config
from tools.ops.context import OpsContext, OpsError

ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")
REDRIVE_EXTENSION = "sagaredrive"
_dl = t.dead_letters


def _engine(ctx: OpsContext) -> Engine:
    return create_engine(ctx.require_database().sqlalchemy_url(), poolclass=pool.NullPool)


def list_dead_letters(ctx: OpsContext, *, everything: bool = False) -> list[dict[str, Any]]:
    """Dead letters waiting for an operator (neither re-driven nor resolved), or all."""
    query = select(_dl).order_by(_dl.c.id)
    if not everything:
        query = query.where(_dl.c.redriven_at.is_(None), _dl.c.resolved.is_(False))
    engine = _engine(ctx)
    try:
        with engine.connect() as conn:
            return [summary(ctx, row) for row in conn.execute(query)]
    finally:
        engine.dispose()


def show(ctx: OpsContext, dead_letter_id: int) -> dict[str, Any]:
    row = _rows(ctx, [dead_letter_id])[0]
    attributes = dict(row.attributes)
    return summary(ctx, row) | {
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
            "redrive_count": row.redrive_count,
            "redriven_at": row.redriven_at.isoformat() if row.redriven_at else None,
            "resolved": row.resolved}


def redrive(ctx: OpsContext, ids: Sequence[int] | None, *, topic: str | None = None
            ) -> list[tuple[int, str]]:
    """Produce each dead letter again (ids None: every one waiting); (id, topic) of each.
    Marked re-driven only after the broker acknowledged it."""
    if ids is None:
        ids = [item["id"] for item in list_dead_letters(ctx)]
    rows = _rows(ctx, ids) if ids else []
    records = [(row, record_of(row, topic)) for row in rows]  # all checked before sending
    producer = Producer(producer_config(ctx.require_kafka()) | {"client.id": "saga-dlq"})
    errors: list[str] = []

    def acked(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(f"{message.topic()}: {error}")

    for _row, (target, key, headers, value) in records:
        producer.produce(target, value=value, key=key, headers=headers, on_delivery=acked)
    if producer.flush(30) or errors:
        raise OpsError(f"the broker did not take every event ({'; '.join(errors) or 'timeout'}"
                       "); nothing was marked re-driven, run the command again")
    engine = _engine(ctx)
    try:
        with engine.begin() as conn:
            conn.execute(update(_dl).where(_dl.c.id.in_([r.id for r, _ in records])).values(
                redriven_at=func.now(), redrive_count=_dl.c.redrive_count + 1))
    finally:
        engine.dispose()
    return [(row.id, record[0]) for row, record in records]


def resolve(ctx: OpsContext, ids: Sequence[int]) -> None:
    """Mark dead letters as dealt with, without re-driving them."""
    _rows(ctx, ids)
    engine = _engine(ctx)
    try:
        with engine.begin() as conn:
            conn.execute(update(_dl).where(_dl.c.id.in_(list(ids))).values(resolved=True))
    finally:
        engine.dispose()


Record = tuple[str, bytes | None, list[tuple[str, str | bytes | None]], bytes | None]


def record_of(row: Row[Any], topic: str | None = None) -> Record:
    """(topic, key, headers, value) of the event as it was first produced (binary mode)."""
    attributes: dict[str, str] = {k: str(v) for k, v in (row.attributes or {}).items()}
    if topic is None:
        spec = CATALOGUE.get(row.event_type)
        if spec is None:
            raise OpsError(f"dead letter {row.id}: type {row.event_type!r} is not in the "
                           "catalogue, so its topic is unknown: give it with --topic")
        topic = spec.topic
    attributes[REDRIVE_EXTENSION] = str(row.redrive_count + 1)
    headers: list[tuple[str, str | bytes | None]] = []
    for name, value in sorted(attributes.items()):
        if name in ERROR_EXTENSIONS:
            continue
        headers.append(("content-type" if name == "datacontenttype" else f"ce_{name}",
                        value.encode()))
    key = attributes.get("partitionkey") or row.subject
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
    engine = _engine(ctx)
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(select(_dl).where(_dl.c.id.in_(list(ids)))
                                     .order_by(_dl.c.id)))
    finally:
        engine.dispose()
    missing = sorted(set(ids) - {row.id for row in rows})
    if missing:
        raise OpsError(f"no dead letter with id {', '.join(map(str, missing))} "
                       "(`saga dlq list --all` shows every one)")
    return rows

