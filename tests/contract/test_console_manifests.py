"""The console's own configuration agrees with what the local runtime and the cluster run:
the KafkaSources it asks Kafka about (derived from the catalogue, since its pod has no
manifests) are those of kafka-sources/, and the functions' state it reads locally is what
the runtime writes into runtime-state.json."""

from __future__ import annotations

import dataclasses

from functions.console.runtime_view import FunctionState, kafka_sources
from tools import REPO_ROOT
from tools.manifests.loader import load_project_manifests
from tools.runtime.serving.function_process import FunctionStatus


def test_the_console_asks_about_exactly_the_kafka_sources_of_the_manifests() -> None:
    manifests = load_project_manifests(REPO_ROOT).kafka_sources
    assert {name: (group, sorted(topics)) for name, group, topics in kafka_sources()} == {
        name: (spec.consumer_group, sorted(spec.topics)) for name, spec in manifests.items()}


def test_the_console_reads_fields_the_runtime_writes() -> None:
    written = {f.name for f in dataclasses.fields(FunctionStatus)}
    assert set(FunctionState.model_fields) <= written
