"""One parser per Knative kind the local runtime runs. Each error names the file, the
object and the field path, so a bad manifest is fixed without reading this code.

The allowed field sets are the upstream CRD schemas' (../shared/schemas/knative/); a test
holds them to those files. Fields that only matter in a cluster (bootstrapServers, net,
consumers, auth, numPartitions, ...) are accepted and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.manifests.cron import is_valid_schedule
from tools.manifests.durations import parse_go_duration, parse_iso8601_duration
from tools.manifests.fields import (
    At,
    ManifestError,
    b64,
    choice,
    int_at_least,
    object_name,
    zone,
)
from tools.manifests.specs import (
    DEFAULT_REQUEST_TIMEOUT_S,
    DeliverySpec,
    FunctionSpec,
    KafkaSinkSpec,
    KafkaSourceSpec,
    PingSourceSpec,
)

__all__ = ["ManifestError", "parse_kafka_sink", "parse_kafka_source", "parse_ping_source",
           "parse_service"]

KAFKA_SOURCE_FIELDS = {"bootstrapServers", "ceOverrides", "consumerGroup", "consumers",
                       "delivery", "initialOffset", "net", "ordering", "sink", "topics"}
DELIVERY_FIELDS = {"backoffDelay", "backoffPolicy", "deadLetterSink", "retry",
                   "retryAfterMax", "timeout"}
PING_SOURCE_FIELDS = {"ceOverrides", "contentType", "data", "dataBase64", "schedule", "sink",
                      "timezone"}
KAFKA_SINK_FIELDS = {"auth", "bootstrapServers", "contentMode", "numPartitions",
                     "replicationFactor", "topic"}
DESTINATION_FIELDS = {"CACerts", "audience", "ref", "uri"}
SIGNATURE_TYPES = ("http", "event", "cloudevent", "typed")
# Knative sets these itself and refuses a Service that sets them; so does this runtime.
RESERVED_ENV = ("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")

_ANNOTATION = "autoscaling.knative.dev/"


def parse_service(doc: Mapping[str, Any], path: Path) -> FunctionSpec:
    name = object_name(doc, path, "Service")
    at = At(path, "Service", name)
    labels = at.mapping((doc.get("metadata") or {}).get("labels"), "metadata.labels")
    spec = at.mapping(doc.get("spec"), "spec")
    template = at.mapping(spec.get("template"), "spec.template")
    annotations = at.mapping((template.get("metadata") or {}).get("annotations"),
                             "spec.template.metadata.annotations")
    pod = at.mapping(template.get("spec"), "spec.template.spec")
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        raise at.fail("spec.template.spec.containers", "expected a list with one container")
    # Knative allows sidecars; the serving container is the one that declares ports.
    serving = [c for c in containers if isinstance(c, dict) and c.get("ports")] or containers
    if len(serving) != 1 or not isinstance(serving[0], dict):
        raise at.fail("spec.template.spec.containers", "exactly one container must declare ports")
    env = _literal_env(at, serving[0].get("env"))

    def annotation(key: str) -> str | None:
        camel = re.sub(r"-(\w)", lambda m: m.group(1).upper(), key)
        value = annotations.get(_ANNOTATION + key, annotations.get(_ANNOTATION + camel))
        return None if value is None else str(value)

    field = "spec.template.metadata.annotations." + _ANNOTATION
    min_scale = int_at_least(at, annotation("min-scale") or "0", field + "min-scale", 0)
    initial_scale = int_at_least(at, annotation("initial-scale") or "1",
                                 field + "initial-scale", 0)
    max_scale = int_at_least(at, annotation("max-scale") or "0", field + "max-scale", 0)
    if max_scale and min_scale > max_scale:
        raise at.fail(field + "min-scale", f"{min_scale} is above max-scale {max_scale}")
    retention_text = annotation("scale-to-zero-pod-retention-period")
    retention = (None if retention_text is None else
                 at.convert(retention_text, field + "scale-to-zero-pod-retention-period",
                            parse_go_duration))
    signature = env.get("FUNCTION_SIGNATURE_TYPE", "http")
    if signature not in SIGNATURE_TYPES:
        raise at.fail("env FUNCTION_SIGNATURE_TYPE",
                      f"{signature!r} is not one of {', '.join(SIGNATURE_TYPES)}")
    for required in ("FUNCTION_TARGET", "FUNCTION_SOURCE"):
        if not env.get(required):
            raise at.fail(f"env {required}", "required: the local runtime starts "
                          "functions-framework with --target/--source from these")
    timeout = pod.get("timeoutSeconds")
    return FunctionSpec(
        name=name, target=env["FUNCTION_TARGET"], source=env["FUNCTION_SOURCE"],
        signature_type=signature, env=env, min_scale=min_scale, max_scale=max_scale,
        initial_scale=initial_scale, retention_period=retention,
        container_concurrency=int_at_least(
            at, pod.get("containerConcurrency", 0), "spec.template.spec.containerConcurrency", 0),
        timeout_seconds=(DEFAULT_REQUEST_TIMEOUT_S if timeout is None else float(
            int_at_least(at, timeout, "spec.template.spec.timeoutSeconds", 1))),
        public=labels.get("networking.knative.dev/visibility") != "cluster-local",
        manifest=path,
    )


def _literal_env(at: At, entries: Any) -> dict[str, str]:
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise at.fail("containers[].env", "expected a list")
    env: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise at.fail("containers[].env", f"each entry needs a name, got {entry!r}")
        if entry["name"] in RESERVED_ENV:
            raise at.fail(f"env {entry['name']}", "is reserved: Knative (and this runtime) set it")
        if "value" in entry:  # valueFrom (secrets, config maps) exists only in a cluster
            env[entry["name"]] = "" if entry["value"] is None else str(entry["value"])
    return env


def _sink_ref(at: At, value: Any, field: str, kind: str, api_version: str) -> str:
    destination = at.mapping(value, field, DESTINATION_FIELDS)
    if destination.get("uri") is not None:
        raise at.fail(f"{field}.uri", f"not supported locally: use a ref to a {kind}")
    ref = at.mapping(destination.get("ref"), f"{field}.ref")
    if not ref:
        raise at.fail(f"{field}.ref", f"required: a ref to a {kind}")
    if ref.get("kind") != kind or ref.get("apiVersion", api_version) != api_version:
        raise at.fail(f"{field}.ref", f"must be {kind} {api_version}, got "
                      f"{ref.get('kind')} {ref.get('apiVersion')}")
    return str(at.string(ref, "name", f"{field}.ref", required=True))


def _overrides(at: At, spec: Mapping[str, Any]) -> dict[str, str]:
    overrides = at.mapping(spec.get("ceOverrides"), "spec.ceOverrides", {"extensions"})
    extensions = at.mapping(overrides.get("extensions"), "spec.ceOverrides.extensions")
    return {str(k).lower(): str(v) for k, v in extensions.items()}


def parse_delivery(at: At, value: Any) -> DeliverySpec:
    if value is None:
        return DeliverySpec()  # Knative's defaults for a source without a delivery block
    block = at.mapping(value, "spec.delivery", DELIVERY_FIELDS)

    def duration(key: str) -> float | None:
        text = at.string(block, key, "spec.delivery")
        return None if text is None else at.convert(text, f"spec.delivery.{key}",
                                                    parse_iso8601_duration)

    timeout = duration("timeout")
    if timeout is not None and timeout <= 0:
        raise at.fail("spec.delivery.timeout", "must be greater than 0")
    delay = duration("backoffDelay")
    return DeliverySpec(
        # A delivery block without `retry` means no retries (Knative's semantics).
        retry=int_at_least(at, block.get("retry", 0), "spec.delivery.retry", 0),
        backoff_policy="linear" if choice(at, block.get("backoffPolicy"),
                                           "spec.delivery.backoffPolicy",
                                           ("linear", "exponential"),
                                           "exponential") == "linear" else "exponential",
        backoff_delay=DeliverySpec.backoff_delay if delay is None else delay,
        timeout=timeout,
        dead_letter_sink=None if block.get("deadLetterSink") is None else _sink_ref(
            at, block["deadLetterSink"], "spec.delivery.deadLetterSink", "KafkaSink",
            "eventing.knative.dev/v1alpha1"),
        retry_after_max=duration("retryAfterMax"),
    )


def parse_kafka_source(doc: Mapping[str, Any], path: Path) -> KafkaSourceSpec:
    name = object_name(doc, path, "KafkaSource")
    at = At(path, "KafkaSource", name)
    spec = at.mapping(doc.get("spec"), "spec", KAFKA_SOURCE_FIELDS)
    topics = spec.get("topics")
    if (not isinstance(topics, list) or not topics
            or not all(isinstance(t, str) and t for t in topics)):
        raise at.fail("spec.topics", f"expected a non-empty list of topic names, got {topics!r}")
    if len(set(topics)) != len(topics):
        raise at.fail("spec.topics", "lists a topic twice")
    return KafkaSourceSpec(
        name=name,
        # Knative generates a group id when none is given; a stable one keeps offsets here.
        consumer_group=at.string(spec, "consumerGroup", "spec") or f"knative-kafka-source-{name}",
        topics=tuple(topics),
        sink=_sink_ref(at, spec.get("sink"), "spec.sink", "Service", "serving.knative.dev/v1"),
        initial_offset="earliest" if choice(at, spec.get("initialOffset"), "spec.initialOffset",
                                             ("earliest", "latest"), "latest") == "earliest"
        else "latest",
        ordering="unordered" if choice(at, spec.get("ordering"), "spec.ordering",
                                        ("ordered", "unordered"), "ordered") == "unordered"
        else "ordered",
        delivery=parse_delivery(at, spec.get("delivery")),
        ce_overrides=_overrides(at, spec),
        manifest=path,
    )


def parse_ping_source(doc: Mapping[str, Any], path: Path) -> PingSourceSpec:
    name = object_name(doc, path, "PingSource")
    at = At(path, "PingSource", name)
    spec = at.mapping(doc.get("spec"), "spec", PING_SOURCE_FIELDS)
    schedule = at.string(spec, "schedule", "spec") or "* * * * *"
    # Knative parses schedules with robfig/cron's standard parser: five fields or a
    # descriptor (@hourly), optionally after CRON_TZ=; croniter would also take seconds.
    fields = schedule.split()
    if fields and fields[0].startswith(("CRON_TZ=", "TZ=")):
        raise at.fail("spec.schedule", "put the zone in spec.timezone, not in the schedule")
    if not is_valid_schedule(schedule) or not (len(fields) == 5 or schedule.startswith("@")):
        raise at.fail("spec.schedule", f"{schedule!r} is not a five-field cron schedule")
    timezone = at.string(spec, "timezone", "spec")
    if timezone is not None:
        at.convert(timezone, "spec.timezone", zone)
    data, data_base64 = at.string(spec, "data", "spec"), at.string(spec, "dataBase64", "spec")
    if data is not None and data_base64 is not None:
        raise at.fail("spec.data", "data and dataBase64 are mutually exclusive")
    if data_base64 is not None:
        at.convert(data_base64, "spec.dataBase64", b64)
    return PingSourceSpec(
        name=name, sink=_sink_ref(at, spec.get("sink"), "spec.sink", "Service",
                                  "serving.knative.dev/v1"),
        schedule=schedule, timezone=timezone, data=data, data_base64=data_base64,
        content_type=at.string(spec, "contentType", "spec"), ce_overrides=_overrides(at, spec),
        manifest=path,
    )


def parse_kafka_sink(doc: Mapping[str, Any], path: Path) -> KafkaSinkSpec:
    name = object_name(doc, path, "KafkaSink")
    at = At(path, "KafkaSink", name)
    spec = at.mapping(doc.get("spec"), "spec", KAFKA_SINK_FIELDS)
    mode = choice(at, spec.get("contentMode"), "spec.contentMode", ("binary", "structured"),
                  "binary")
    if mode != "binary":
        raise at.fail("spec.contentMode", "the local runtime writes binary mode only (the mode "
                      "every consumer here reads); use binary")
    return KafkaSinkSpec(name=name, topic=str(at.string(spec, "topic", "spec", required=True)),
                         manifest=path)
