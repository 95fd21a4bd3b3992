"""The parts of a cluster the image tier plays itself, between processes of the image: a
client of the api pod, and the KafkaSources and PingSources of the manifests, delivering
each event from the broker to the Services its sources name, in binary mode (no tests
here)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from sqlalchemy import select

from common import tables as t
from common.cloudevents_kafka import event_from_parts
from common.settings import Settings
from tests.helpers import engine_of, read_topic
from tools import REPO_ROOT
from tools.image.process import ImageProcess, http_call
from tools.manifests.loader import load_project_manifests
from tools.manifests.specs import Manifests
from tools.runtime.eventing.ping_source import ping_headers


@dataclass(frozen=True)
class Delivery:
    function: str
    event_type: str
    event_id: str
    status: int
    body: bytes


@dataclass
class Shop:
    pods: Mapping[str, ImageProcess]
    settings: Settings  # the test process's view of the same database and broker
    manifests: Manifests = field(default_factory=lambda: load_project_manifests(REPO_ROOT))
    deliveries: list[Delivery] = field(default_factory=list)
    carried: set[str] = field(default_factory=set)  # ids of the events delivered so far

    # --- the api ------------------------------------------------------------------------

    def api(self, method: str, path: str, *, token: str | None = None,
            body: Any = None, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        status, raw = http_call(self.pods["api"].port, method, path, body=data, headers=sent)
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    # --- the sources ----------------------------------------------------------------------

    def routes(self, topic: str) -> list[str]:
        """The Services the KafkaSources of `topic` deliver to."""
        return sorted({s.sink for s in self.manifests.kafka_sources.values()
                       if topic in s.topics})

    def deliver(self, function: str, headers: Mapping[str, str], body: bytes,
                event_type: str, event_id: str) -> Delivery:
        status, answer = http_call(self.pods[function].port, "POST", "/", body=body,
                                   headers=headers, timeout=30)
        delivery = Delivery(function, event_type, event_id, status, answer)
        self.deliveries.append(delivery)
        return delivery

    def deliver_event(self, function: str, event: CloudEvent) -> Delivery:
        headers, body = to_binary(event)
        return self.deliver(function, headers, body, str(event["type"]), str(event["id"]))

    def ping(self, function: str) -> Delivery:
        """One tick of the PingSource that delivers to `function`."""
        [spec] = [s for s in self.manifests.ping_sources.values() if s.sink == function]
        event_id = str(uuid.uuid4())
        headers = ping_headers(spec, datetime.now(UTC), event_id=event_id)
        return self.deliver(spec.sink, headers, spec.body(), headers["ce-type"], event_id)

    def carry(self, partition_key: str) -> list[CloudEvent]:
        """Deliver every event of the outbox with this partition key not delivered yet, taken
        from the broker (so each one was published), to the Services its sources name, then
        what those deliveries emitted, until nothing new is emitted; those events, in
        order."""
        carried: list[CloudEvent] = []
        while new := [e for e in self.outbox(partition_key) if e["id"] not in self.carried]:
            for event in new:
                self.carried.add(event["id"])
                published = read_topic(self.settings, event["type"], _same_id(event))
                for function in self.routes(event["type"]):
                    delivery = self.deliver_event(function, published)
                    assert 200 <= delivery.status < 300, delivery
                carried.append(published)
        return carried

    def outbox(self, partition_key: str) -> list[CloudEvent]:
        o = t.outbox
        with engine_of(self.settings).connect() as conn:
            rows = conn.execute(select(o.c.attributes, o.c.data)
                                .where(o.c.partition_key == partition_key)
                                .order_by(o.c.created_at, o.c.id)).all()
        return [event_from_parts(row.attributes, row.data) for row in rows]


def _same_id(want: CloudEvent) -> Callable[[CloudEvent], bool]:
    return lambda got: bool(got["id"] == want["id"])
