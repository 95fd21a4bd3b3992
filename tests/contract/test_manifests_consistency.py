"""The manifests agree with the code and with each other, both ways: the event catalogue,
the KafkaSources, the KafkaTopics and the functions; every reference names something that
exists; the sizing arithmetic the comments state holds in every overlay; and the local
runtime starts from the very files kustomize deploys."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from common.events import catalogue as c
from common.serving import probes
from common.settings import Settings
from functions.api.catalogue_import import Catalogue
from tests.contract.k8s_support import (
    OVERLAYS,
    by_kind,
    container,
    documents,
    env,
    rendered,
    revision_annotations,
    services,
    source_files,
)
from tools import REPO_ROOT
from tools.deploy.kn import STRICT_SECURITY_CONTEXT
from tools.deploy.manifests import Doc, group_kind
from tools.manifests.loader import load_project_manifests

DAY_MS = 24 * 3600 * 1000
# PostgreSQL max_connections docs/deploy.md sets per overlay, minus
# superuser_reserved_connections (3) and headroom for the migration Job, `saga` CLI
# sessions, psql and backups/monitoring (dev 10, prod 20).
CONNECTION_BUDGET = {"dev": 100 - 3 - 10, "prod": 400 - 3 - 20}
TOPIC_SIZES = {"dev": (3, 1, 1), "prod": (12, 3, 2)}  # partitions, replicas, min.insync
KAFKA_TOPIC_CONFIGS = {"retention.ms", "cleanup.policy", "min.insync.replicas",
                       "retention.bytes", "message.timestamp.type", "max.message.bytes",
                       "segment.ms", "segment.bytes"}
AUTOSCALING_ANNOTATIONS = {
    "autoscaling.knative.dev/" + k for k in (
        "min-scale", "max-scale", "initial-scale", "target", "target-utilization-percentage",
        "metric", "class", "window", "scale-to-zero-pod-retention-period", "scale-down-delay",
        "activation-scale", "panic-window-percentage", "panic-threshold-percentage")}
# Environment variables functions-framework, gunicorn and common/event_server read.
FRAMEWORK_ENV = {"FUNCTION_TARGET", "FUNCTION_SOURCE", "FUNCTION_SIGNATURE_TYPE",
                 "FUNCTION_USE_ASGI", "THREADS", "WORKERS"}
SIGNATURE_DECORATORS = {"cloudevent": "cloud_event", "http": "http"}


def settings_env_names() -> set[str]:
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(a) for a in alias.choices)
        else:
            names.add("SAGA_" + field_name.upper())
    return names


def kafka_sources(docs: list[Doc]) -> dict[str, Doc]:
    return by_kind(docs, "sources.knative.dev", "KafkaSource")


def kafka_topics(docs: list[Doc]) -> dict[str, Doc]:
    return by_kind(docs, "kafka.strimzi.io", "KafkaTopic")


def config_map(docs: list[Doc]) -> dict[str, str]:
    """saga-config: what every function and Job reads from its environment."""
    data: dict[str, str] = by_kind(docs, "", "ConfigMap")["saga-config"]["data"]
    return data


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# --- the catalogue, the sources, the topics and the functions --------------------------

def test_every_catalogued_consumer_has_a_kafka_source_on_exactly_its_topics(
        overlay: str) -> None:
    sources = kafka_sources(rendered(overlay))
    consumers = {f for spec in c.CATALOGUE.values() for f in spec.consumers}
    by_sink = {s["spec"]["sink"]["ref"]["name"]: s for s in sources.values()}
    assert set(by_sink) == consumers | {c.DLQ}
    for function in consumers:
        assert sorted(by_sink[function]["spec"]["topics"]) == c.types_consumed_by(function)
    assert by_sink[c.DLQ]["spec"]["topics"] == [c.DEAD_LETTER_TOPIC]


def test_every_topic_has_a_kafka_topic_and_there_are_no_others(overlay: str) -> None:
    topics = kafka_topics(rendered(overlay))
    assert sorted(topics) == c.topics()
    for name, topic in topics.items():
        assert topic["spec"].get("topicName", name) == name
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "saga"


def test_every_kafka_source_topic_and_sink_topic_exists(overlay: str) -> None:
    docs = rendered(overlay)
    topics = set(kafka_topics(docs))
    read = {t for s in kafka_sources(docs).values() for t in s["spec"]["topics"]}
    written = {s["spec"]["topic"] for s in by_kind(docs, "eventing.knative.dev", "KafkaSink")
               .values()}
    assert read | written <= topics
    assert written == {c.DEAD_LETTER_TOPIC}


def test_every_sink_names_an_existing_object(overlay: str) -> None:
    docs = rendered(overlay)
    functions = set(services(docs))
    sinks = set(by_kind(docs, "eventing.knative.dev", "KafkaSink"))
    pings = by_kind(docs, "sources.knative.dev", "PingSource")
    for source in [*kafka_sources(docs).values(), *pings.values()]:
        ref = source["spec"]["sink"]["ref"]
        assert (ref["apiVersion"], ref["kind"]) == ("serving.knative.dev/v1", "Service")
        assert ref["name"] in functions, source["metadata"]["name"]
    for name, source in kafka_sources(docs).items():
        dead_letters = source["spec"]["delivery"].get("deadLetterSink")
        if name == c.DLQ:
            # A dead letter's dead letter would loop back into this source.
            assert dead_letters is None
        else:
            assert dead_letters["ref"]["kind"] == "KafkaSink"
            assert dead_letters["ref"]["name"] in sinks


def test_every_function_folder_has_a_service_and_every_service_a_folder() -> None:
    folders = {p.parent.name for p in (REPO_ROOT / "functions").glob("*/main.py")}
    targets = {env(s)["FUNCTION_SOURCE"].split("/")[1] for s in services(rendered("dev")).values()}
    assert folders == targets


@pytest.mark.parametrize("service", sorted(services(
    [d for p in (REPO_ROOT / "knative").glob("*.yaml") for d in documents(p)])))
def test_function_target_resolves_to_a_function_in_its_source(service: str) -> None:
    doc = services(rendered("dev"))[service]
    variables = env(doc)
    source = REPO_ROOT / variables["FUNCTION_SOURCE"]
    tree = ast.parse(source.read_text(encoding="utf-8"))
    functions = {node.name: node for node in tree.body
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    target = variables["FUNCTION_TARGET"]
    assert target in functions, f"{source} defines no function {target!r}"
    decorators = {ast.unparse(d) for d in functions[target].decorator_list}
    decorator = SIGNATURE_DECORATORS[variables["FUNCTION_SIGNATURE_TYPE"]]
    asgi = variables.get("FUNCTION_USE_ASGI") == "true"
    wanted = f"aio.{decorator}" if asgi else f"functions_framework.{decorator}"
    assert wanted in decorators, f"{target} is not decorated with {wanted}"


def test_event_functions_are_fed_by_a_source_and_the_http_functions_are_public() -> None:
    docs = rendered("dev")
    fed = {s["spec"]["sink"]["ref"]["name"] for s in [
        *kafka_sources(docs).values(),
        *by_kind(docs, "sources.knative.dev", "PingSource").values()]}
    for name, service in services(docs).items():
        labels = service["metadata"].get("labels", {})
        visibility = labels.get("networking.knative.dev/visibility")
        min_scale = revision_annotations(service)["autoscaling.knative.dev/min-scale"]
        if env(service).get("FUNCTION_USE_ASGI") != "true":  # Flask: the HTTP functions
            assert name in (c.API, c.CONSOLE) and visibility is None and name not in fed
            # Customers wait on the api; operators can wait for the console's cold start.
            assert int(min_scale) >= 1 if name == c.API else min_scale == "0"
        else:
            assert name in fed
            assert visibility == "cluster-local"
            assert min_scale == "0"


def test_kafka_sources_are_stable_ordered_and_retried(overlay: str) -> None:
    for name, source in kafka_sources(rendered(overlay)).items():
        spec = source["spec"]
        assert spec["consumerGroup"] == f"saga-{name}"
        assert (spec["initialOffset"], spec["ordering"]) == ("earliest", "ordered")
        delivery = spec["delivery"]
        assert delivery["retry"] >= 3 and delivery["backoffPolicy"] == "exponential"
        assert delivery["timeout"] and delivery["backoffDelay"]


def test_every_kafka_address_is_the_same(overlay: str) -> None:
    docs = rendered(overlay)
    bootstrap = config_map(docs)["KAFKA_BOOTSTRAP_SERVERS"]
    objects = [*kafka_sources(docs).values(),
               *by_kind(docs, "eventing.knative.dev", "KafkaSink").values()]
    for doc in objects:
        assert ",".join(doc["spec"]["bootstrapServers"]) == bootstrap
    # saga-kafka-bootstrap.<namespace> is Strimzi's bootstrap Service of cluster `saga`.
    namespace = {t["metadata"]["namespace"] for t in kafka_topics(docs).values()}
    assert bootstrap == f"saga-kafka-bootstrap.{namespace.pop()}:9092"


# --- topics ----------------------------------------------------------------------------

def test_topic_sizes_and_retention(overlay: str) -> None:
    partitions, replicas, min_insync = TOPIC_SIZES[overlay]
    for name, topic in kafka_topics(rendered(overlay)).items():
        spec = topic["spec"]
        config = spec["config"]
        assert set(config) <= KAFKA_TOPIC_CONFIGS, f"{name}: unknown config {set(config)}"
        assert (spec["partitions"], spec["replicas"]) == (partitions, replicas)
        assert int(config["min.insync.replicas"]) == min_insync
        # One broker may fail without refusing writes, where there is more than one.
        assert replicas == 1 or replicas - min_insync >= 1
        assert config["cleanup.policy"] == "delete"  # compaction would break replay
        assert int(config["retention.ms"]) >= 7 * DAY_MS


# --- sizing: concurrency, threads, pool, connections, scale -----------------------------

def test_concurrency_threads_and_pool_agree(overlay: str) -> None:
    for name, service in services(rendered(overlay)).items():
        variables = env(service)
        concurrency = service["spec"]["template"]["spec"]["containerConcurrency"]
        assert concurrency == int(variables["THREADS"]) == int(variables["SAGA_DB_POOL_SIZE"]), \
            name
        assert int(revision_annotations(service)["autoscaling.knative.dev/target"]) <= concurrency


def connections(docs: list[Doc]) -> dict[str, int]:
    """The most connections each function can hold: max-scale x (pool + overflow)."""
    overflow = int(config_map(docs)["SAGA_DB_POOL_MAX_OVERFLOW"])
    assert int(config_map(docs)["WORKERS"]) == 1  # one pool per pod
    return {name: int(revision_annotations(s)["autoscaling.knative.dev/max-scale"])
            * (int(env(s)["SAGA_DB_POOL_SIZE"]) + overflow)
            for name, s in services(docs).items()}


def test_connections_fit_the_database(overlay: str) -> None:
    total = sum(connections(rendered(overlay)).values())
    assert total <= CONNECTION_BUDGET[overlay], (overlay, connections(rendered(overlay)))


def test_documented_connection_totals() -> None:
    """The totals the docs and comments quote are the ones the manifests give."""
    dev, prod = (sum(connections(rendered(o)).values()) for o in ("dev", "prod"))
    docs = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert f"{dev} <= {CONNECTION_BUDGET['dev']}" in docs
    assert f"{prod} <= {CONNECTION_BUDGET['prod']}" in docs
    scale = (REPO_ROOT / "deploy" / "overlays" / "prod" / "scale.yaml").read_text(encoding="utf-8")
    assert f"= {prod} <= {CONNECTION_BUDGET['prod']}" in scale


def test_max_scale_never_exceeds_what_ordered_delivery_can_keep_busy(overlay: str) -> None:
    """One event in flight per partition: a function reading T topics of P partitions has
    at most P x T events in flight, which ceil(P x T / containerConcurrency) pods absorb."""
    docs = rendered(overlay)
    topics = kafka_topics(docs)
    for source in kafka_sources(docs).values():
        service = services(docs)[source["spec"]["sink"]["ref"]["name"]]
        in_flight = sum(topics[t]["spec"]["partitions"] for t in source["spec"]["topics"])
        concurrency = service["spec"]["template"]["spec"]["containerConcurrency"]
        max_scale = int(revision_annotations(service)["autoscaling.knative.dev/max-scale"])
        assert max_scale <= math.ceil(in_flight / concurrency), source["metadata"]["name"]


def test_only_known_autoscaling_annotations(overlay: str) -> None:
    for name, service in services(rendered(overlay)).items():
        found = revision_annotations(service)
        keys = {k for k in found if k.startswith("autoscaling.knative.dev/")}
        assert keys <= AUTOSCALING_ANNOTATIONS, (name, keys - AUTOSCALING_ANNOTATIONS)
        assert int(found["autoscaling.knative.dev/min-scale"]) <= int(
            found["autoscaling.knative.dev/max-scale"])


# --- probes, resources, security, image ------------------------------------------------

def test_probes_check_that_the_function_serves(overlay: str) -> None:
    for name, service in services(rendered(overlay)).items():
        spec = container(service)
        ready, live = spec["readinessProbe"], spec["livenessProbe"]
        assert ready["httpGet"] == {"path": probes.READINESS_PATH}, name
        assert live["httpGet"] == {"path": probes.LIVENESS_PATH}, name
        # Knative refuses a probe port other than the serving port; none means that one.
        # No readiness period: the queue-proxy's fast startup probing keeps cold starts short.
        assert "periodSeconds" not in ready
        window = live["periodSeconds"] * live["failureThreshold"]
        timeout = service["spec"]["template"]["spec"].get("timeoutSeconds")
        assert window >= 60 and (timeout is None or window > timeout), name


def _quantity(value: Any) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_resources_have_requests_and_limits(overlay: str) -> None:
    docs = rendered(overlay)
    pods = [*services(docs).values(), *by_kind(docs, "batch", "Job").values()]
    for doc in pods:
        resources = doc["spec"]["template"]["spec"]["containers"][0]["resources"]
        for amount in ("cpu", "memory"):
            assert _quantity(resources["requests"][amount]) <= _quantity(
                resources["limits"][amount]), (doc["metadata"]["name"], amount)
    prod, dev = services(rendered("prod")), services(rendered("dev"))
    for name in prod:  # prod is never smaller than dev
        for kind in ("requests", "limits"):
            for amount in ("cpu", "memory"):
                assert _quantity(container(prod[name])["resources"][kind][amount]) >= _quantity(
                    container(dev[name])["resources"][kind][amount])


def test_every_container_is_locked_down_and_runs_the_one_image(overlay: str) -> None:
    docs = rendered(overlay)
    pods = [*services(docs).values(), *by_kind(docs, "batch", "Job").values()]
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in pods}
    assert len(images) == 1, images
    for doc in pods:
        assert doc["spec"]["template"]["spec"]["containers"][0]["securityContext"] == \
            STRICT_SECURITY_CONTEXT


def test_log_shipping_hints_name_the_container_kn_makes(overlay: str) -> None:
    """Filebeat's hints are keyed by container name. kn cannot name a container, and
    Knative names the one it gets `user-container`; hints keyed by any other name would
    match nothing in the cluster and no log would be shipped."""
    for name, service in services(rendered(overlay)).items():
        assert "name" not in container(service), name
        keys = [k for k in revision_annotations(service) if k.startswith("co.elastic.logs")]
        assert keys, f"{name}: no Filebeat hints"
        assert {k.split("/")[0] for k in keys} == {"co.elastic.logs.user-container"}, name
        assert revision_annotations(service)["co.elastic.logs.user-container/enabled"] == "true"


def test_the_migration_job_runs_alembic_with_the_functions_configuration() -> None:
    job = by_kind(rendered("dev"), "batch", "Job")["saga-migrate"]
    [spec] = job["spec"]["template"]["spec"]["containers"]
    assert spec["command"] == ["alembic", "upgrade", "head"]
    assert spec["envFrom"] == container(services(rendered("dev"))[c.API])["envFrom"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_the_bootstrap_job_reads_the_catalogue_and_the_admins_secret(overlay: str) -> None:
    """The api's configuration, plus the optional Secret only it reads, and the catalogue
    ConfigMap mounted where its command looks; every overlay's catalogue is one the Job
    accepts (prod's starts empty: never dev's example products)."""
    docs = rendered(overlay)
    pod = by_kind(docs, "batch", "Job")["saga-bootstrap"]["spec"]["template"]["spec"]
    [spec] = pod["containers"]
    assert spec["command"][:3] == ["python", "-m", "functions.api.bootstrap"]
    api = container(services(docs)[c.API])["envFrom"]
    assert spec["envFrom"] == [*api, {"secretRef": {"name": "saga-bootstrap", "optional": True}}]
    [mount] = spec["volumeMounts"]
    [volume] = pod["volumes"]
    config_maps = by_kind(docs, "", "ConfigMap")
    files = config_maps[volume["configMap"]["name"]]["data"]
    assert [f"{mount['mountPath']}/{key}" for key in files] == [spec["command"][-1]]
    catalogue = Catalogue.model_validate_json(next(iter(files.values())))
    assert (len(catalogue.products) > 0) == (overlay == "dev")
    assert pod["restartPolicy"] == "Never"


# --- configuration names ---------------------------------------------------------------

def test_configuration_keys_are_settings_the_code_reads() -> None:
    known = settings_env_names()
    docs = rendered("dev")
    assert set(config_map(docs)) <= known | {"WORKERS"}
    template = yaml.safe_load((REPO_ROOT / "knative/cluster/secret.template.yaml").read_text())
    assert set(template["stringData"]) <= known
    bootstrap = (REPO_ROOT / "knative/cluster/bootstrap-secret.template.yaml").read_text()
    assert set(yaml.safe_load(bootstrap)["stringData"]) <= known
    for service in services(docs).values():
        assert set(env(service)) <= known | FRAMEWORK_ENV
        refs = {next(iter(r.values()))["name"] for r in container(service)["envFrom"]}
        assert refs == {"saga-config", template["metadata"]["name"]}


# --- the files: all deployed, and the local runtime runs the same ones -----------------

def _kustomized_files() -> set[Path]:
    """Every file a kustomization in the project lists as a resource."""
    listed: set[Path] = set()
    for kustomization in [*REPO_ROOT.glob("knative/**/kustomization.yaml"),
                          *REPO_ROOT.glob("kafka-sources/**/kustomization.yaml")]:
        for entry in yaml.safe_load(kustomization.read_text())["resources"]:
            path = (kustomization.parent / entry).resolve()
            if path.is_file():
                listed.add(path)
    return listed


def test_every_manifest_file_is_deployed() -> None:
    listed = _kustomized_files()
    orphans = [p.relative_to(REPO_ROOT) for p in source_files()
               if p.resolve() not in listed and not p.name.endswith(".template.yaml")]
    assert orphans == []


def test_the_local_runtime_runs_what_kustomize_deploys() -> None:
    """tools/runtime reads knative/*.yaml and kafka-sources/*.yaml directly; it must load
    them (skipping what it does not run) and see exactly the functions, sources and sink
    that an overlay deploys."""
    local = load_project_manifests(REPO_ROOT)
    docs = rendered("dev")
    assert set(local.functions) == set(services(docs))
    assert set(local.kafka_sources) == set(kafka_sources(docs))
    assert set(local.ping_sources) == set(by_kind(docs, "sources.knative.dev", "PingSource"))
    assert set(local.kafka_sinks) == set(by_kind(docs, "eventing.knative.dev", "KafkaSink"))
    assert local.topics() == c.topics()
    for name, spec in local.functions.items():
        service = services(docs)[name]
        assert spec.container_concurrency == service["spec"]["template"]["spec"][
            "containerConcurrency"]
        assert (spec.target, spec.source) == (env(service)["FUNCTION_TARGET"],
                                              env(service)["FUNCTION_SOURCE"])


def test_cluster_only_objects_sit_where_the_runtime_does_not_read() -> None:
    """The runtime reads only the top level of knative/ and kafka-sources/ (and skips core,
    batch, kustomize and Strimzi kinds there anyway); overlays with partial Services live in
    deploy/, outside both."""
    top_level = [p for folder in ("knative", "kafka-sources")
                 for p in (REPO_ROOT / folder).glob("*.yaml") if p.stem != "kustomization"]
    runtime_kinds = {("serving.knative.dev", "Service"), ("sources.knative.dev", "KafkaSource"),
                     ("sources.knative.dev", "PingSource"), ("eventing.knative.dev", "KafkaSink")}
    for path in top_level:
        for doc in documents(path):
            assert group_kind(doc) in runtime_kinds, path
    assert not list((REPO_ROOT / "knative").glob("**/overlays"))
