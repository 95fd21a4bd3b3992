"""The local runtime's manifest reading: defaults, durations, and refusals that say where."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from tools import REPO_ROOT
from tools.manifests import kinds
from tools.manifests.durations import parse_go_duration, parse_iso8601_duration
from tools.manifests.loader import ManifestError, load_manifests, load_project_manifests
from tools.manifests.specs import DeliverySpec

SCHEMAS = REPO_ROOT.parent / "shared" / "schemas" / "knative"

SERVICE = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
  labels: {{networking.knative.dev/visibility: cluster-local}}
spec:
  template:
    metadata:
      annotations: {{autoscaling.knative.dev/min-scale: "{min_scale}"}}
    spec:
      containers:
        - image: x
          ports: [{{containerPort: 8080}}]
          env:
            - {{name: FUNCTION_TARGET, value: {name}}}
            - {{name: FUNCTION_SOURCE, value: functions/{name}/main.py}}
            - {{name: FUNCTION_SIGNATURE_TYPE, value: cloudevent}}
            - {{name: SECRET, valueFrom: {{secretKeyRef: {{name: s, key: k}}}}}}
"""

SINK = """
apiVersion: eventing.knative.dev/v1alpha1
kind: KafkaSink
metadata: {name: dls}
spec: {topic: dead.letters, bootstrapServers: [x:9092]}
"""


def source(extra: str = "", sink: str = "fn") -> str:
    return f"""
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {{name: src}}
spec:
  bootstrapServers: [x:9092]
  topics: [a.topic, b.topic]
  sink: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: {sink}}}}}
{textwrap.indent(textwrap.dedent(extra), "  ")}
"""


def write(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text))
    return tmp_path


def load(tmp_path: Path, **files: str) -> object:
    return load_manifests([write(tmp_path, **files)])


def refused(tmp_path: Path, match: str, **files: str) -> str:
    with pytest.raises(ManifestError, match=match) as info:
        load_manifests([write(tmp_path, **files)])
    return str(info.value)


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("PT0.3S", 0.3), ("PT10S", 10), ("PT1M", 60), ("PT1.5M", 90), ("PT1H2M3S", 3723),
    ("P1D", 86400), ("P1DT1S", 86401), ("P1W", 604800), ("pt0,5s", 0.5),
])
def test_iso8601_durations(text: str, seconds: float) -> None:
    assert parse_iso8601_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10s", "PT", "P", "PT1S2M", "1.5", "PTS", "P1M", "P1Y"])
def test_bad_iso8601_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|months"):
        parse_iso8601_duration(text)


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0), ("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("1.5m", 90),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "5 minutes", "1d", "s", "1m x"])
def test_bad_go_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="Go duration"):
        parse_go_duration(text)


# --- defaults --------------------------------------------------------------------------


def test_service_fields_and_literal_env_only(tmp_path: Path) -> None:
    manifests = load_manifests([write(tmp_path, fn=SERVICE.format(name="fn", min_scale=0))])
    spec = manifests.functions["fn"]
    assert (spec.target, spec.source, spec.signature_type) == (
        "fn", "functions/fn/main.py", "cloudevent")
    assert "SECRET" not in spec.env  # valueFrom exists only in a cluster
    assert spec.min_scale == 0 and spec.scales_to_zero and not spec.public
    assert spec.retention_period is None and spec.timeout_seconds == 300


def test_kafka_source_without_delivery_gets_knative_defaults(tmp_path: Path) -> None:
    manifests = load_manifests([write(tmp_path, fn=SERVICE.format(name="fn", min_scale=0),
                                      src=source())])
    spec = manifests.kafka_sources["src"]
    assert spec.delivery == DeliverySpec(retry=10, backoff_policy="exponential",
                                         backoff_delay=0.3)
    assert spec.initial_offset == "latest" and spec.ordering == "ordered"
    assert spec.consumer_group == "knative-kafka-source-src"
    assert spec.topics == ("a.topic", "b.topic") and spec.sink == "fn"


def test_delivery_block_without_retry_means_no_retries(tmp_path: Path) -> None:
    manifests = load_manifests([write(
        tmp_path, fn=SERVICE.format(name="fn", min_scale=0), dls=SINK,
        src=source("""
            consumerGroup: g
            initialOffset: earliest
            ordering: unordered
            delivery:
              backoffPolicy: linear
              backoffDelay: PT2S
              timeout: PT1M
              deadLetterSink:
                ref: {apiVersion: eventing.knative.dev/v1alpha1, kind: KafkaSink, name: dls}
        """))])
    spec = manifests.kafka_sources["src"]
    assert spec.delivery == DeliverySpec(retry=0, backoff_policy="linear", backoff_delay=2.0,
                                         timeout=60.0, dead_letter_sink="dls")
    assert (spec.consumer_group, spec.initial_offset, spec.ordering) == (
        "g", "earliest", "unordered")
    assert manifests.dead_letter_topic(spec) == "dead.letters"
    assert manifests.topics() == ["a.topic", "b.topic", "dead.letters"]


def test_retention_period_and_scale_annotations(tmp_path: Path) -> None:
    text = SERVICE.format(name="fn", min_scale=1).replace(
        '{autoscaling.knative.dev/min-scale: "1"}',
        '{autoscaling.knative.dev/minScale: "1", autoscaling.knative.dev/max-scale: "4", '
        'autoscaling.knative.dev/scale-to-zero-pod-retention-period: "1m5s"}')
    spec = load_manifests([write(tmp_path, fn=text)]).functions["fn"]
    assert (spec.min_scale, spec.max_scale, spec.retention_period) == (1, 4, 65.0)


@pytest.mark.parametrize(("annotations", "initial", "starts"), [
    ('{autoscaling.knative.dev/min-scale: "0"}', 1, True),  # Knative's default: one pod
    ('{autoscaling.knative.dev/min-scale: "0", autoscaling.knative.dev/initial-scale: "0"}',
     0, False),
    ('{autoscaling.knative.dev/min-scale: "1", autoscaling.knative.dev/initialScale: "0"}',
     0, True),  # a revision starts with max(initial, min)
])
def test_initial_scale(tmp_path: Path, annotations: str, initial: int, starts: bool) -> None:
    text = SERVICE.format(name="fn", min_scale=0).replace(
        '{autoscaling.knative.dev/min-scale: "0"}', annotations)
    spec = load_manifests([write(tmp_path, fn=text)]).functions["fn"]
    assert (spec.initial_scale, spec.starts_with_runtime) == (initial, starts)


def test_negative_initial_scale_is_refused(tmp_path: Path) -> None:
    text = SERVICE.format(name="fn", min_scale=0).replace(
        '{autoscaling.knative.dev/min-scale: "0"}',
        '{autoscaling.knative.dev/initial-scale: "-1"}')
    refused(tmp_path, "initial-scale: expected an integer >= 0", fn=text)


def test_skipped_kinds_and_kustomization(tmp_path: Path) -> None:
    manifests = load_manifests([write(
        tmp_path, fn=SERVICE.format(name="fn", min_scale=0),
        other="""
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: c}
            ---
            apiVersion: batch/v1
            kind: Job
            metadata: {name: j}
            ---
            apiVersion: kafka.strimzi.io/v1beta2
            kind: KafkaTopic
            metadata: {name: t}
        """,
        kustomization="resources: [fn.yaml]\n")])
    assert list(manifests.functions) == ["fn"]


def test_the_projects_manifests_load() -> None:
    manifests = load_project_manifests(REPO_ROOT)
    for spec in manifests.kafka_sources.values():
        assert spec.sink in manifests.functions
    ingress = manifests.ingress()
    assert ingress is not None and ingress.min_scale >= 1


# --- refusals name the file, the object and the field -----------------------------------


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, "unknown field", fn=SERVICE.format(name="fn", min_scale=0),
                      src=source("retries: 3"))
    assert "src.yaml" in message and "KafkaSource 'src'" in message and "retries" in message


def test_sink_naming_a_missing_service_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, "no manifest defines", fn=SERVICE.format(name="fn", min_scale=0),
                      src=source(sink="nope"))
    assert "spec.sink.ref" in message and "'nope'" in message


def test_dead_letter_sink_naming_a_missing_kafka_sink_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, "KafkaSink 'dls', which no manifest", fn=SERVICE.format(name="fn",
                                                                               min_scale=0),
            src=source("""
                delivery:
                  deadLetterSink:
                    ref: {apiVersion: eventing.knative.dev/v1alpha1, kind: KafkaSink, name: dls}
            """))


@pytest.mark.parametrize(("extra", "match"), [
    ("delivery: {backoffPolicy: random}", "backoffPolicy: 'random' is not one of"),
    ("delivery: {retry: -1}", "retry: expected an integer >= 0"),
    ("delivery: {backoffDelay: 10s}", "backoffDelay: '10s' is not an ISO-8601"),
    ("delivery: {timeout: PT0S}", "timeout: must be greater than 0"),
    ("ordering: sorted", "ordering: 'sorted' is not one of"),
    ("initialOffset: newest", "initialOffset"),
    ("delivery: {deadLetterSink: {uri: 'http://x'}}", "uri: not supported locally"),
])
def test_bad_values_are_refused(tmp_path: Path, extra: str, match: str) -> None:
    refused(tmp_path, match, fn=SERVICE.format(name="fn", min_scale=0), src=source(extra))


def test_service_without_function_target_is_refused(tmp_path: Path) -> None:
    text = SERVICE.format(name="fn", min_scale=0).replace(
        "- {name: FUNCTION_TARGET, value: fn}", "")
    message = refused(tmp_path, "FUNCTION_TARGET", fn=text)
    assert "Service 'fn'" in message


def test_reserved_env_is_refused(tmp_path: Path) -> None:
    text = SERVICE.format(name="fn", min_scale=0).replace(
        "- {name: FUNCTION_TARGET",
        "- {name: PORT, value: '1'}\n            - {name: FUNCTION_TARGET")
    refused(tmp_path, "PORT: is reserved", fn=text)


def test_an_unrun_knative_kind_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, "Trigger .* is not run by the local runtime", trigger="""
        apiVersion: eventing.knative.dev/v1
        kind: Trigger
        metadata: {name: t}
        spec: {broker: default}
    """)


def test_structured_kafka_sink_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, "contentMode: the local runtime writes binary mode only",
            dls=SINK.replace("bootstrapServers: [x:9092]}",
                             "bootstrapServers: [x:9092], contentMode: structured}"))


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    refused(tmp_path, "also defined in", a=SERVICE.format(name="fn", min_scale=0),
            b=SERVICE.format(name="fn", min_scale=0))


def test_min_scale_above_max_scale_is_refused(tmp_path: Path) -> None:
    text = SERVICE.format(name="fn", min_scale=3).replace(
        '"3"}', '"3", autoscaling.knative.dev/max-scale: "2"}')
    refused(tmp_path, "above max-scale", fn=text)


PING = """
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {{name: tick}}
spec:
  {body}
  sink: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: fn}}}}
"""


def test_ping_source_fields(tmp_path: Path) -> None:
    manifests = load_manifests([write(
        tmp_path, fn=SERVICE.format(name="fn", min_scale=0),
        ping=PING.format(body="schedule: '*/5 * * * *'\n  timezone: Europe/Berlin\n"
                              "  dataBase64: aGk=\n  contentType: text/plain"))])
    spec = manifests.ping_sources["tick"]
    assert (spec.schedule, spec.timezone, spec.body(), spec.content_type) == (
        "*/5 * * * *", "Europe/Berlin", b"hi", "text/plain")


@pytest.mark.parametrize(("body", "match"), [
    ("schedule: 'every minute'", "five-field cron"),
    ("schedule: '* * * * * *'", "five-field cron"),
    ("timezone: Mars/Olympus", "IANA time zone"),
    ("data: x\n  dataBase64: eA==", "mutually exclusive"),
    ("dataBase64: '%%%'", "not valid base64"),
    ("delivery: {retry: 3}", "unknown field"),
])
def test_bad_ping_sources_are_refused(tmp_path: Path, body: str, match: str) -> None:
    refused(tmp_path, match, fn=SERVICE.format(name="fn", min_scale=0),
            ping=PING.format(body=body))


# --- the allowed fields are the upstream CRDs' -------------------------------------------


def _crd_properties(file: str, version: str, *path: str) -> set[str]:
    crd = yaml.safe_load((SCHEMAS / file).read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    node = schema["schema"]["openAPIV3Schema"]
    for name in path:
        node = node["properties"][name]
    return set(node["properties"])


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason="upstream CRD schemas not checked out")
def test_allowed_fields_match_the_crds() -> None:
    assert _crd_properties(
        "kafka-source.crd.yaml", "v1beta1", "spec") == kinds.KAFKA_SOURCE_FIELDS
    assert _crd_properties(
        "kafka-source.crd.yaml", "v1beta1", "spec", "delivery") == kinds.DELIVERY_FIELDS
    assert _crd_properties(
        "kafka-source.crd.yaml", "v1beta1", "spec", "sink") == kinds.DESTINATION_FIELDS
    assert _crd_properties(
        "eventing-pingsource.crd.yaml", "v1", "spec") == kinds.PING_SOURCE_FIELDS
    assert _crd_properties(
        "kafka-sink.crd.yaml", "v1alpha1", "spec") == kinds.KAFKA_SINK_FIELDS
