"""`saga status`: functions, sources (consumer group lag per partition), outbox backlog, dead
letters and the growing tables' sizes, as one document (stable JSON) or a table. Functions
come from a local runtime's state file; the rest is asked of Kafka and PostgreSQL, so it
works against any the settings name. Nothing to ask, or a broker or database named but not
answering, raises Unreachable: one line, no made-up rows; what is not named is listed in
`notes`. Lag is the high watermark minus the committed offset; a partition never committed
to reports offset null and what the source would deliver first: all (earliest) or none."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from sqlalchemy import create_engine, func, pool, select
from sqlalchemy.exc import SQLAlchemyError

from common import tables as t
from common.dead_letters import waiting
from common.table_stats import table_stats
from tools.infra.reach import Unreachable
from tools.ops.context import OpsContext
from tools.ops.kafka_admin import kafka_ops

FUNCTION_FIELDS = ("name", "state", "port", "last_cold_start_ms")


@dataclass
class Status:
    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    failed: bool = False  # a part that should have been read was not (the notes say which)


def collect(ctx: OpsContext) -> Status:
    if (nothing := ctx.no_stack()) is not None:
        raise Unreachable(nothing)
    notes: list[str] = []
    document: dict[str, Any] = {
        "functions": _functions(ctx, notes), "sources": [],
        "outbox": {"unpublished": None}, "dead_letters": None, "tables": []}
    if ctx.settings.kafka_bootstrap_servers:
        ctx.require_kafka()
        try:
            document["sources"] = _sources(ctx)
        except KafkaException as exc:  # answered the probe, then refused or went away
            error = exc.args[0] if exc.args else None
            reason = error.str() if isinstance(error, KafkaError) else str(exc)
            raise Unreachable(f"Kafka at {ctx.settings.kafka_bootstrap_servers} answered, then "
                              f"failed to report offsets: {reason}") from None
    else:
        notes.append("no Kafka: set KAFKA_BOOTSTRAP_SERVERS or start `./taskw up`")
    if ctx.settings.database_url is None:
        notes.append("no database: set DATABASE_URL or start `./taskw up`")
    else:
        ctx.require_database()
        try:
            unpublished, dead, tables = _counts(ctx)
            document["outbox"]["unpublished"], document["dead_letters"] = unpublished, dead
            document["tables"] = tables
        except SQLAlchemyError as exc:  # it let us in; the query failed (schema not migrated?)
            notes.append(f"the database did not answer: {str(exc).splitlines()[0]}")
            return Status(document, notes, failed=True)
    return Status(document, notes)


def _functions(ctx: OpsContext, notes: list[str]) -> list[dict[str, Any]]:
    if ctx.runtime is None:
        notes.append(f"no local runtime is running (no live runtime-state.json in "
                     f"{ctx.state_dir}): functions are not listed; on a cluster use "
                     "`kn service list`")
        return []
    functions = ctx.runtime.get("functions") or {}
    return [{key: doc.get(key) for key in FUNCTION_FIELDS} | {"name": name}
            for name, doc in sorted(functions.items())]


def _sources(ctx: OpsContext) -> list[dict[str, Any]]:
    specs = sorted(ctx.manifests.kafka_sources.values(), key=lambda s: s.name)
    sources = []
    with kafka_ops(ctx.settings) as kafka:
        for spec in specs:
            tps = kafka.partitions(spec.topics)
            marks = kafka.watermarks(tps)
            committed = kafka.committed(spec.consumer_group)
            partitions = []
            for tp in tps:
                low, high = marks[tp]
                offset = committed.get(tp)
                if offset is None:
                    lag = high - low if spec.initial_offset == "earliest" else 0
                else:
                    lag = max(0, high - offset)
                partitions.append({"topic": tp[0], "partition": tp[1], "offset": offset,
                                   "end": high, "lag": lag})
            sources.append({"name": spec.name, "consumer_group": spec.consumer_group,
                            "partitions": partitions})
    return sources


def _counts(ctx: OpsContext) -> tuple[int, int, list[dict[str, Any]]]:
    engine = create_engine(ctx.settings.sqlalchemy_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            unpublished = conn.execute(select(func.count()).select_from(t.outbox).where(
                t.outbox.c.published_at.is_(None))).scalar_one()
            dead = conn.execute(select(func.count()).select_from(t.dead_letters).where(
                waiting())).scalar_one()
            tables = [stats.as_dict() for stats in table_stats(conn)]
    finally:
        engine.dispose()
    return int(unpublished), int(dead), tables


def render(document: dict[str, Any]) -> str:
    lines = ["functions:"]
    if not document["functions"]:
        lines.append("  (no local runtime)")
    lines += [f"  {f['name']:<16}{f['state'] or '-':<16}{f['port'] or '-':<8}"
              + (f"last cold start {f['last_cold_start_ms']:.0f} ms"
                 if f["last_cold_start_ms"] is not None else "")
              for f in document["functions"]]
    lines.append("sources:                                                 offset     end"
                 "     lag")
    for source in document["sources"]:
        lag = sum(p["lag"] for p in source["partitions"])
        lines.append(f"  {source['name']:<16}group {source['consumer_group']:<24} lag {lag}")
        lines += [f"    {p['topic'] + '/' + str(p['partition']):<50}"
                  f"{'-' if p['offset'] is None else p['offset']:>8}{p['end']:>8}{p['lag']:>8}"
                  for p in source["partitions"]]
    unpublished = document["outbox"]["unpublished"]
    lines.append(f"outbox: {'?' if unpublished is None else unpublished} unpublished")
    dead = document["dead_letters"]
    lines.append(f"dead letters: {'?' if dead is None else dead} waiting "
                 "(`saga dlq list` shows them)")
    if document["tables"]:
        lines.append(f"{'tables (~: an estimate)':<28}{'rows':>12}{'size':>12}  oldest row")
        lines += [f"  {row['table']:<26}{_rows(row):>12}{_size(row['bytes']):>12}  "
                  f"{row['oldest'] or '-'}" for row in document["tables"]]
    return "\n".join(lines)


def _rows(row: dict[str, Any]) -> str:
    return ("~" if row["rows_estimated"] else "") + f"{row['rows']:,}"


def _size(count: int) -> str:
    size, unit = float(count), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            break
        size /= 1024
    return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
