"""What the local runtime runs, as typed, immutable values read from the manifests.

These mirror the parts of the Knative resources that change behaviour locally; fields that
only matter in a cluster (images, bootstrap servers, SASL) are not kept. Defaults are
Knative's, so a manifest means the same thing here as in the cluster.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Ordering = Literal["ordered", "unordered"]
InitialOffset = Literal["earliest", "latest"]
BackoffPolicy = Literal["linear", "exponential"]

# Knative Serving's default revision timeout (timeoutSeconds): the longest a request may take.
DEFAULT_REQUEST_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class DeliverySpec:
    """A source's `spec.delivery`. The defaults are what Knative applies to a source that
    has no delivery block at all (docs/architecture.md, "Knative's delivery rules"); a
    block without `retry` is parsed to retry=0, i.e. no retries."""

    retry: int = 10
    backoff_policy: BackoffPolicy = "exponential"
    backoff_delay: float = 0.3  # seconds
    timeout: float | None = None  # per attempt, seconds; None: the sink's request timeout
    dead_letter_sink: str | None = None  # name of a KafkaSink
    retry_after_max: float | None = None  # cap on a 429/503 Retry-After; None: ignore it


@dataclass(frozen=True)
class FunctionSpec:
    """A Knative Service running one function (FUNCTION_TARGET/SOURCE/SIGNATURE_TYPE)."""

    name: str
    target: str
    source: str
    signature_type: str
    # Literal `value:` entries only; valueFrom/envFrom come from the cluster, not from here.
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    min_scale: int = 0
    max_scale: int = 0  # 0: unbounded, as in Knative
    # Pods a new revision starts with (autoscaling.knative.dev/initial-scale; the cluster
    # default is 1): locally, 0 leaves the function stopped until its first event.
    initial_scale: int = 1
    retention_period: float | None = None  # seconds; overrides the idle period when > 0
    container_concurrency: int = 0  # 0: unbounded
    timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_S
    # Not `networking.knative.dev/visibility: cluster-local`: reachable from outside.
    public: bool = True
    manifest: Path = Path()

    @property
    def scales_to_zero(self) -> bool:
        return self.min_scale == 0

    @property
    def starts_with_runtime(self) -> bool:
        """Knative starts a revision with max(initial-scale, min-scale) pods."""
        return max(self.initial_scale, self.min_scale) > 0


@dataclass(frozen=True)
class KafkaSourceSpec:
    name: str
    consumer_group: str
    topics: tuple[str, ...]
    sink: str  # name of a FunctionSpec
    initial_offset: InitialOffset = "latest"
    ordering: Ordering = "ordered"
    delivery: DeliverySpec = DeliverySpec()
    ce_overrides: Mapping[str, str] = field(default_factory=dict, hash=False)
    manifest: Path = Path()


@dataclass(frozen=True)
class PingSourceSpec:
    name: str
    sink: str  # name of a FunctionSpec
    schedule: str = "* * * * *"
    timezone: str | None = None  # None: the machine's local zone, as Knative's default
    data: str | None = None
    data_base64: str | None = None
    content_type: str | None = None
    ce_overrides: Mapping[str, str] = field(default_factory=dict, hash=False)
    manifest: Path = Path()

    def body(self) -> bytes:
        if self.data_base64 is not None:
            return base64.b64decode(self.data_base64)
        return (self.data or "").encode()


@dataclass(frozen=True)
class KafkaSinkSpec:
    name: str
    topic: str  # written in binary content mode (structured is refused locally)
    manifest: Path = Path()


@dataclass(frozen=True)
class Manifests:
    """Everything the runtime runs, each kind keyed by metadata.name."""

    functions: Mapping[str, FunctionSpec]
    kafka_sources: Mapping[str, KafkaSourceSpec]
    ping_sources: Mapping[str, PingSourceSpec]
    kafka_sinks: Mapping[str, KafkaSinkSpec]

    def ingress(self) -> FunctionSpec | None:
        """The function customers reach: the public Service (the first by name if several);
        it listens on settings.api_port, every other function on a free port."""
        public = sorted(name for name, spec in self.functions.items() if spec.public)
        return self.functions[public[0]] if public else None

    def topics(self) -> list[str]:
        """Every topic a KafkaSource reads or a KafkaSink writes."""
        names = {sink.topic for sink in self.kafka_sinks.values()}
        for source in self.kafka_sources.values():
            names.update(source.topics)
        return sorted(names)

    def dead_letter_topic(self, source: KafkaSourceSpec) -> str | None:
        name = source.delivery.dead_letter_sink
        return self.kafka_sinks[name].topic if name else None

    def event_driven(self) -> set[str]:
        """Functions some source delivers to: only these can be started on demand, because
        locally there is no activator in front of plain HTTP traffic."""
        sinks = {s.sink for s in self.kafka_sources.values()}
        return sinks | {s.sink for s in self.ping_sources.values()}
