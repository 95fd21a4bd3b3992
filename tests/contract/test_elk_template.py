"""The Elasticsearch templates map exactly the contract's fields with the contract's types,
and the ILM policy keeps logs longer than Kafka keeps the events they describe."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from common.logging import ECS_VERSION
from tests.contract import ELK, MAPPINGS, load_json, mapped_fields
from tools import REPO_ROOT
from tools.log_contract import BASE_REQUIRED, FIELDS

ES = ELK / "elasticsearch"
# The type Elasticsearch stores for each contract type. constant_keyword: data_stream.*
# hold one value per data stream; match_only_text: ECS's type for message.
COMPATIBLE = {"keyword": {"keyword", "constant_keyword"}, "text": {"match_only_text", "text"},
              "long": {"long"}, "date": {"date"}}
KAFKA_RETENTION_DAYS = 7  # DESIGN: the topics keep events a week (unless manifests say more)
INVESTIGATION_DAYS = 14  # after the last possible replay, time to notice and dig in


def _mappings() -> dict[str, Any]:
    mappings: dict[str, Any] = load_json(MAPPINGS)["template"]["mappings"]
    return mappings


def test_every_mapped_field_is_a_contract_field_of_the_same_type() -> None:
    fields = mapped_fields(_mappings()["properties"])
    unknown = sorted(set(fields) - set(FIELDS))
    assert not unknown, f"the template maps fields outside the contract: {unknown}"
    wrong = {name: (type_, FIELDS[name].type) for name, type_ in fields.items()
             if type_ not in COMPATIBLE[FIELDS[name].type]}
    assert not wrong, wrong


def test_every_contract_field_is_mapped() -> None:
    missing = sorted(set(FIELDS) - set(mapped_fields(_mappings()["properties"])))
    assert not missing, f"contract fields the template leaves to dynamic mapping: {missing}"


def test_the_types_the_dashboards_need() -> None:
    fields = mapped_fields(_mappings()["properties"])
    assert fields["event.duration"] == "long"  # percentiles in nanoseconds
    assert fields["@timestamp"] == "date"
    for name in ("trace.id", "span.id", "service.name", "labels.order_id", "cloudevents.type",
                 "error.message", "error.type"):
        assert fields[name] == "keyword", name  # aggregatable: terms, options list
    [dynamic] = _mappings()["dynamic_templates"]
    assert dynamic["saga_labels"]["path_match"] == "labels.*"
    assert dynamic["saga_labels"]["mapping"]["type"] == "keyword"  # a handler's own label


def test_the_lines_declare_the_ecs_version_the_template_follows() -> None:
    """ECS requires ecs.version in every event. The lines declare the version the mappings
    were written to (the template's _meta.ecs_version), which must be one the Elastic stack
    of elk/ knows: its ecs@mappings follow the ECS release of the same major version."""
    assert load_json(MAPPINGS)["_meta"]["ecs_version"] == ECS_VERSION
    assert "ecs.version" in BASE_REQUIRED and FIELDS["ecs.version"].origin == "function"
    [elasticsearch] = yaml.safe_load_all((ELK / "eck" / "elasticsearch.yaml").read_text())
    assert ECS_VERSION.split(".")[0] == str(elasticsearch["spec"]["version"]).split(".")[0]


def test_the_index_template_makes_logs_saga_data_streams() -> None:
    template = load_json(ES / "index-template.json")
    assert template["index_patterns"] == ["logs-saga-*"]
    assert template["data_stream"] == {}
    # Above Elastic's built-in "logs" template (logs-*-*, priority 100).
    assert template["priority"] > 100
    ours = ["saga-logs@mappings", "saga-logs@settings"]
    assert template["composed_of"][-2:] == ours  # last: ours win over Elastic's defaults
    assert set(template["ignore_missing_component_templates"]).isdisjoint(ours)


def _days(age: str) -> float:
    number, unit = re.fullmatch(r"(\d+)([dh])", age).groups()  # type: ignore[union-attr]
    return int(number) / (24 if unit == "h" else 1)


def _kafka_retention_days() -> float:
    """The longest retention.ms of the repository's KafkaTopic manifests, else the design's
    7 days (the manifests are another part of the project)."""
    days = [float(KAFKA_RETENTION_DAYS)]
    folders = [p for p in REPO_ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for path in (yaml_file for folder in folders for yaml_file in folder.rglob("*.yaml")):
        for doc in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "KafkaTopic":
                retention = (doc.get("spec") or {}).get("config", {}).get("retention.ms")
                if retention is not None and int(retention) > 0:
                    days.append(int(retention) / 86_400_000)
    return max(days)


def test_logs_outlive_every_replayable_event() -> None:
    settings = load_json(ES / "component-template-settings.json")["template"]["settings"]
    assert settings["index.lifecycle.name"] == "saga-logs"
    phases = load_json(ES / "ilm-policy.json")["policy"]["phases"]
    kept = _days(phases["delete"]["min_age"])
    assert kept >= _kafka_retention_days() + INVESTIGATION_DAYS
    assert phases["hot"]["actions"]["rollover"]["max_age"] == "1d"
