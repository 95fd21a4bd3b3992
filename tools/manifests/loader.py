"""Read knative/*.yaml and kafka-sources/*.yaml into the specs the local runtime runs.

Adding a function is adding manifests: nothing here names a function. Kinds the runtime
runs are parsed strictly (a field the upstream CRD does not have, a bad value, or a
reference to something that does not exist is refused with the file, object and field);
plain Kubernetes and Strimzi kinds (Job, ConfigMap, KafkaTopic, kustomization, ...) are
skipped because they do not change how events flow; any other Knative kind (Trigger,
Broker, ...) is refused, since skipping it would silently change the routing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tools.manifests import kinds
from tools.manifests.kinds import ManifestError
from tools.manifests.specs import (
    FunctionSpec,
    KafkaSinkSpec,
    KafkaSourceSpec,
    Manifests,
    PingSourceSpec,
)

__all__ = ["ManifestError", "load_manifests", "load_project_manifests"]

_SKIPPED_GROUPS = (
    "",  # core v1: ConfigMap, Secret, Namespace, ServiceAccount
    "apps", "batch", "rbac.authorization.k8s.io", "policy", "networking.k8s.io",
    "autoscaling", "kustomize.config.k8s.io", "kafka.strimzi.io", "core.strimzi.io",
    "monitoring.coreos.com", "elasticsearch.k8s.elastic.co", "kibana.k8s.elastic.co",
    "beat.k8s.elastic.co", "logstash.k8s.elastic.co", "apiextensions.k8s.io",
)


def load_project_manifests(root: Path) -> Manifests:
    """The manifests of the checkout at `root` (its knative/ and kafka-sources/)."""
    return load_manifests([root / "knative", root / "kafka-sources"])


def load_manifests(directories: Iterable[Path]) -> Manifests:
    functions: dict[str, FunctionSpec] = {}
    kafka_sources: dict[str, KafkaSourceSpec] = {}
    ping_sources: dict[str, PingSourceSpec] = {}
    kafka_sinks: dict[str, KafkaSinkSpec] = {}
    for path in _yaml_files(directories):
        for doc in _documents(path):
            api_version, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
            key = (api_version, kind)
            if key == ("serving.knative.dev/v1", "Service"):
                _add(functions, kinds.parse_service(doc, path), path)
            elif key == ("sources.knative.dev/v1beta1", "KafkaSource"):
                _add(kafka_sources, kinds.parse_kafka_source(doc, path), path)
            elif key == ("sources.knative.dev/v1", "PingSource"):
                _add(ping_sources, kinds.parse_ping_source(doc, path), path)
            elif key == ("eventing.knative.dev/v1alpha1", "KafkaSink"):
                _add(kafka_sinks, kinds.parse_kafka_sink(doc, path), path)
            elif not _skippable(api_version, kind):
                raise ManifestError(
                    f"{path}: {kind or '<no kind>'} ({api_version or '<no apiVersion>'}) is "
                    "not run by the local runtime; it runs Service serving.knative.dev/v1, "
                    "KafkaSource sources.knative.dev/v1beta1, PingSource sources.knative.dev/v1 "
                    "and KafkaSink eventing.knative.dev/v1alpha1"
                )
    manifests = Manifests(functions, kafka_sources, ping_sources, kafka_sinks)
    _check_references(manifests)
    return manifests


def _yaml_files(directories: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            # kustomization.yaml is kustomize's own file, not a resource.
            if path.suffix in (".yaml", ".yml") and path.stem != "kustomization":
                files.append(path)
    return files


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from exc
    docs: list[dict[str, Any]] = []
    for index, doc in enumerate(loaded):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(f"{path}: document {index + 1} is not a mapping")
        docs.append(doc)
    return docs


def _skippable(api_version: str, kind: str) -> bool:
    if not kind:
        return False
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return group in _SKIPPED_GROUPS


def _add(into: dict[str, Any], spec: Any, path: Path) -> None:
    existing = into.get(spec.name)
    if existing is not None:
        raise ManifestError(
            f"{path}: {type(spec).__name__.removesuffix('Spec')} {spec.name!r} is also "
            f"defined in {existing.manifest}"
        )
    into[spec.name] = spec


def _check_references(manifests: Manifests) -> None:
    groups: dict[str, str] = {}
    for source in manifests.kafka_sources.values():
        where = f"{source.manifest}: KafkaSource {source.name!r}"
        if source.sink not in manifests.functions:
            raise ManifestError(
                f"{where}: spec.sink.ref names Service {source.sink!r}, which no manifest "
                f"defines (Services: {', '.join(sorted(manifests.functions)) or 'none'})"
            )
        dls = source.delivery.dead_letter_sink
        if dls is not None and dls not in manifests.kafka_sinks:
            known = ", ".join(sorted(manifests.kafka_sinks)) or "none"
            raise ManifestError(
                f"{where}: spec.delivery.deadLetterSink.ref names KafkaSink {dls!r}, which no "
                f"manifest defines (KafkaSinks: {known})"
            )
        if source.consumer_group in groups:
            raise ManifestError(
                f"{where}: spec.consumerGroup {source.consumer_group!r} is also used by "
                f"KafkaSource {groups[source.consumer_group]!r}; each source needs its own"
            )
        groups[source.consumer_group] = source.name
    for ping in manifests.ping_sources.values():
        if ping.sink not in manifests.functions:
            raise ManifestError(
                f"{ping.manifest}: PingSource {ping.name!r}: spec.sink.ref names Service "
                f"{ping.sink!r}, which no manifest defines"
            )
