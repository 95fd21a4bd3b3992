"""Contract tests. The logging contract (tools/log_contract.py) and elk/ against it use the
shared paths and loaders below, so every test reads the files the cluster runs; the
deployment manifests' tests have their own k8s_support.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tools import REPO_ROOT

ELK = REPO_ROOT / "elk"
# The project's shared folder sits next to the repository (the upstream CRD schemas of
# Knative, Strimzi and ECK); tests read the schemas from there and skip, saying why, when
# a checkout has no such folder.
SCHEMAS = REPO_ROOT / ".." / "shared" / "schemas"
SAVED_OBJECTS = ELK / "kibana" / "saga-dashboards.ndjson"
MAPPINGS = ELK / "elasticsearch" / "component-template-mappings.json"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def saved_objects() -> list[dict[str, Any]]:
    lines = SAVED_OBJECTS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def mapped_fields(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted field name -> mapping type, from a mappings "properties" tree."""
    fields: dict[str, str] = {}
    for name, mapping in properties.items():
        dotted = f"{prefix}{name}"
        if "properties" in mapping:
            fields.update(mapped_fields(mapping["properties"], f"{dotted}."))
        else:
            fields[dotted] = mapping["type"]
    return fields


def dashboard_fields() -> set[str]:
    """Every field the saved objects use: Lens columns, KQL queries (panels, column filters,
    saved searches), saved-search columns, controls, the data view's formats."""
    fields: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str) and node[:1] in ("{", "["):
            try:
                node = json.loads(node)  # panelsJSON, searchSourceJSON, fieldFormatMap...
            except json.JSONDecodeError:
                return
        if isinstance(node, dict):
            for key in ("sourceField", "fieldName"):
                if isinstance(node.get(key), str):
                    fields.add(node[key])
            if node.get("language") == "kuery":
                fields.update(re.findall(r"([\w.@]+)\s*:", node.get("query", "")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for obj in saved_objects():
        walk(obj["attributes"])
        fields.update(obj["attributes"].get("columns", []))
        fields.update(json.loads(obj["attributes"].get("fieldFormatMap", "{}")))
    return fields - {"___records___"}
