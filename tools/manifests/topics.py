"""The topics as the Strimzi KafkaTopics in kafka-sources/topics/ say: partitions and topic
configuration (retention.ms, cleanup.policy, ...). The one place that reads those files
for the tools: the local runtime creates its topics from them, so a topic on a local
Apache Kafka has the retention it has on the cluster.

Replicas are the cluster's business: a local broker is one node, and creates topics with
its default replication factor (1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.manifests.fields import At, ManifestError, int_at_least

TOPICS_DIR = Path("kafka-sources") / "topics"
_KINDS = ("kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict, hash=False)


def load_topic_specs(root: Path) -> dict[str, TopicSpec]:
    """The KafkaTopics under `root`/kafka-sources/topics/, by topic name (none: empty)."""
    directory = root / TOPICS_DIR
    specs: dict[str, TopicSpec] = {}
    paths = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    for path in paths:
        if path.stem == "kustomization":
            continue
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        except yaml.YAMLError as exc:
            raise ManifestError(f"{path}: not valid YAML: {exc}") from exc
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "KafkaTopic" \
                    and doc.get("apiVersion") in _KINDS:
                spec = _parse(doc, path)
                if spec.name in specs:
                    raise ManifestError(f"{path}: KafkaTopic for topic {spec.name!r} is "
                                        "defined twice")
                specs[spec.name] = spec
    return specs


def specs_for(names: Iterable[str], known: Mapping[str, TopicSpec], *,
              default_partitions: int) -> list[TopicSpec]:
    """A spec per topic name: its KafkaTopic's, or `default_partitions` and the broker's
    default configuration for a topic no manifest describes."""
    return [known.get(name) or TopicSpec(name, default_partitions) for name in sorted(set(names))]


def _parse(doc: Mapping[str, Any], path: Path) -> TopicSpec:
    metadata = doc.get("metadata") or {}
    name = str(metadata.get("name", "")) if isinstance(metadata, dict) else ""
    at = At(path, "KafkaTopic", name)
    spec = at.mapping(doc.get("spec"), "spec")
    topic = at.string(spec, "topicName", "spec") or name
    if not topic:
        raise at.fail("metadata.name", "required (or spec.topicName)")
    config = at.mapping(spec.get("config"), "spec.config")
    return TopicSpec(
        name=topic,
        partitions=int_at_least(at, spec.get("partitions", 1), "spec.partitions", 1),
        # Strimzi takes numbers and booleans; Kafka's admin API takes strings.
        config={str(k): str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in config.items()})
