"""`saga send`: one CloudEvent of a catalogue type, made as our producers make it
(common.cloudevents_kafka.new_event: id, source, type, subject and partitionkey = the
order id, time, traceparent), its data validated by the type's model first. Published to
its topic in binary mode, or POSTed in binary mode straight to a function of the local
runtime (started through the runtime's control port if it scaled to zero, and held from
scaling to zero until the answer is in) or to any URL: the request the KafkaSource would
send (kafka_to_http), without its retries. How a person reproduces a failure
(docs/operations.md, "saga send").
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import urllib3
from cloudevents.http import CloudEvent
from confluent_kafka import KafkaError, Message, Producer
from pydantic import ValidationError

from common.cloudevents_kafka import attributes_of, kafka_to_http, new_event, to_kafka
from common.events.catalogue import CATALOGUE, EventSpec
from common.tracing import new_trace
from tools.infra.kafka_clients import tool_producer_config
from tools.ops.context import OpsContext, OpsError
from tools.runtime.control import ControlClient, ControlError

# The event's source is /saga/<this>: a hand-sent event is told apart in every log line.
SENDER = "saga-send"
HTTP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Sent:
    """What was sent and what became of it: where the broker put it, or how the endpoint
    answered (status None: it was published)."""

    event: CloudEvent
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    url: str | None = None
    status: int | None = None
    body: Any = None
    cold_start: bool | None = None  # --to: whether the runtime had to start the function

    @property
    def refused(self) -> bool:
        return self.status is not None and not 200 <= self.status < 300

    def as_dict(self) -> dict[str, Any]:
        where: dict[str, Any] = (
            {"topic": self.topic, "partition": self.partition, "offset": self.offset}
            if self.url is None else {"url": self.url, "status": self.status, "body": self.body})
        if self.cold_start is not None:
            where["cold_start"] = self.cold_start
        return {"id": self.event["id"], "type": self.event["type"],
                "attributes": attributes_of(self.event), "data": self.event.get_data()} | where


def spec_of(event_type: str) -> EventSpec:
    spec = CATALOGUE.get(event_type)
    if spec is None:
        raise OpsError(f"{event_type!r} is not a catalogued event type; the types are: "
                       + ", ".join(sorted(CATALOGUE)))
    return spec


def read_data(value: str) -> Any:
    """--data: JSON given inline, or `@file` to read it from a file."""
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise OpsError(f"--data {value}: cannot read the file ({exc.strerror})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise OpsError(f"--data is not JSON: {exc}") from None


def build(event_type: str, data: Any, *, event_id: str | None = None) -> CloudEvent:
    """The event, its data checked by the catalogue's model (every problem named)."""
    spec = spec_of(event_type)
    try:
        model = spec.model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'data'}: {err['msg']}"
            for err in exc.errors())
        raise OpsError(f"the data is not a valid {event_type} ({spec.model.__name__}): "
                       f"{problems}") from None
    return new_event(event_type, model, source_function=SENDER,
                     partition_key=str(getattr(model, "order_id", "")), trace=new_trace(),
                     event_id=event_id)


def publish(ctx: OpsContext, event: CloudEvent) -> Sent:
    """Produce to the type's topic; returns once the broker acknowledged it."""
    record = to_kafka(event)
    producer = Producer(tool_producer_config(ctx.require_kafka()) | {"client.id": SENDER})
    acks: list[Message] = []
    errors: list[KafkaError] = []

    def acked(error: KafkaError | None, message: Message) -> None:
        if error is None:
            acks.append(message)
        else:
            errors.append(error)

    producer.produce(record.topic, value=record.value, key=record.key,
                     headers=record.headers, on_delivery=acked)
    producer.flush(30)
    if errors or not acks:
        raise OpsError(f"the broker did not take the event ({errors[0] if errors else 'timeout'})"
                       "; nothing was sent, run the command again")
    return Sent(event, record.topic, acks[0].partition(), acks[0].offset())


def post(url: str, event: CloudEvent) -> Sent:
    """POST the event in binary mode, as the KafkaSource delivers it."""
    record = to_kafka(event)
    headers, body = kafka_to_http(record.headers, record.key, record.value)
    try:
        reply = urllib3.PoolManager(retries=False).request(
            "POST", url, body=body, headers=headers, timeout=HTTP_TIMEOUT_S)
    except urllib3.exceptions.HTTPError as exc:
        raise OpsError(f"{url} did not answer ({exc}); is the function running?") from None
    return Sent(event, url=url, status=reply.status, body=_decoded(reply.data))


def to_function(ctx: OpsContext, function: str, event: CloudEvent) -> Sent:
    """POST the event to `function` of the local runtime. The runtime starts the function
    first if it is not running (a cold start, as a KafkaSource delivery does) and keeps it
    from scaling to zero until the answer is in."""
    control = control_for(ctx, function, str(event["type"]))
    try:
        started = control.start_function(function)
    except ControlError as exc:
        raise NotStarted(f"the runtime did not start {function}: {exc}") from None
    try:
        sent = post(started.url, event)
    finally:
        # Its idle period starts now; a hold never released ends by itself (HOLD_S).
        with contextlib.suppress(ControlError):
            control.release_function(started)
    return replace(sent, cold_start=started.cold_start)


class NotStarted(Exception):
    """The local runtime could not start the function (or its control port is gone)."""


def control_for(ctx: OpsContext, function: str, event_type: str) -> ControlClient:
    """The control port of the local runtime that runs `function`, if it takes the type."""
    consumers = sorted(spec_of(event_type).consumers)
    if function not in consumers:
        raise OpsError(f"{function} does not take {event_type} (taken by: "
                       f"{', '.join(consumers)}); `--url URL` posts to any endpoint")
    if ctx.runtime is None:
        raise OpsError(f"--to needs the local runtime (`./taskw up`) running in "
                       f"{ctx.state_dir}; elsewhere give the endpoint with --url URL")
    control = ctx.control()
    if control is None:
        raise OpsError(f"the stack in {ctx.state_dir} is still starting (phase "
                       f"{ctx.runtime.get('phase')}): wait until ./taskw up reports it is "
                       "running")
    return control


def _decoded(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
