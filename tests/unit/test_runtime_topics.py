"""The topics the local runtime creates (tools/manifests/topics.py, kafka_clients.runtime_topics):
on Apache Kafka as kafka-sources/topics/ says, on Tansu with its few partitions and no
configuration."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from common.events import catalogue
from tools import REPO_ROOT
from tools.infra.kafka_clients import TANSU_PARTITIONS, runtime_topics
from tools.manifests.fields import ManifestError
from tools.manifests.topics import TopicSpec, load_topic_specs
from tools.settings import LocalSettings

WEEK_MS, TWO_WEEKS_MS = "604800000", "1209600000"


def test_every_catalogue_topic_has_its_kafkatopic() -> None:
    specs = load_topic_specs(REPO_ROOT)
    assert set(catalogue.topics()) <= set(specs)
    for name in catalogue.topics():
        assert specs[name].partitions == 3
        assert specs[name].config["retention.ms"] == (
            TWO_WEEKS_MS if name == "saga.dead-letters" else WEEK_MS)
        assert specs[name].config["cleanup.policy"] == "delete"


def test_kafka_gets_the_manifests_tansu_its_few_partitions() -> None:
    manifests = load_topic_specs(REPO_ROOT)
    names = [*catalogue.topics(), "not-in-any-manifest"]
    kafka = {s.name: s for s in runtime_topics(LocalSettings(kafka_broker_kind="kafka"), names,
                                               manifests)}
    for name in catalogue.topics():
        assert kafka[name] == manifests[name]
    assert kafka["not-in-any-manifest"] == TopicSpec("not-in-any-manifest", 3)
    tansu = runtime_topics(LocalSettings(kafka_broker_kind="tansu"), names, manifests)
    assert {(s.partitions, len(s.config)) for s in tansu} == {(TANSU_PARTITIONS, 0)}
    forced = runtime_topics(LocalSettings(kafka_broker_kind="kafka", topic_partitions=1),
                            names, manifests)
    assert {s.partitions for s in forced} == {1}
    assert next(s for s in forced if s.name == catalogue.topics()[0]).config == \
        manifests[catalogue.topics()[0]].config


def test_a_bad_kafkatopic_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    topics = tmp_path / "kafka-sources" / "topics"
    topics.mkdir(parents=True)
    (topics / "topics.yaml").write_text(textwrap.dedent("""
        apiVersion: kafka.strimzi.io/v1
        kind: KafkaTopic
        metadata: {name: t.one}
        spec: {partitions: 0, config: {retention.ms: 1000, compression.type: lz4}}
    """))
    with pytest.raises(ManifestError, match=r"topics.yaml: KafkaTopic 't.one': spec.partitions"):
        load_topic_specs(tmp_path)
    (topics / "topics.yaml").write_text(textwrap.dedent("""
        apiVersion: kafka.strimzi.io/v1beta2
        kind: KafkaTopic
        metadata: {name: t-one}
        spec: {topicName: t.one, partitions: 2, config: {retention.ms: 1000, x: true}}
    """))
    assert load_topic_specs(tmp_path) == {
        "t.one": TopicSpec("t.one", 2, {"retention.ms": "1000", "x": "true"})}
