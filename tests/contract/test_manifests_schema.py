"""Every manifest, as written and as each overlay renders it, validates against the schema
the cluster would use: the upstream CRDs in ../shared/schemas for Knative and Strimzi
kinds, the Kubernetes API schemas (kubernetes-validate) for core kinds. A field a schema
does not declare is an error (the API server would prune it without a word)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract.k8s_support import (
    KUBERNETES_VERSIONS,
    OVERLAYS,
    documents,
    kubectl,
    mutated,
    rendered,
    require_schemas,
    source_files,
    validation_errors,
)
from tools import REPO_ROOT
from tools.deploy.manifests import Doc, render


@pytest.fixture(autouse=True)
def _schemas() -> None:
    require_schemas()


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS)
def test_every_rendered_object_validates(overlay: str, kubernetes_version: str) -> None:
    docs = rendered(overlay)
    assert docs, f"{overlay} renders nothing"
    errors = [e for d in docs for e in validation_errors(d, kubernetes_version)]
    assert errors == []


def test_every_manifest_file_validates() -> None:
    """The files as written, including the Secret template (never applied as it is)."""
    checked = 0
    for path in source_files():
        for doc in documents(path):
            errors = validation_errors(doc)
            assert errors == [], f"{path.relative_to(REPO_ROOT)}: {errors}"
            checked += 1
    assert checked >= 30


def _first(kind: str, overlay: str = "dev") -> Doc:
    return next(d for d in rendered(overlay) if d["kind"] == kind)


@pytest.mark.parametrize(("kind", "path", "value"), [
    ("KafkaSource", "spec.initialoffset", "earliest"),          # initialOffset, misspelt
    ("KafkaSource", "spec.delivery.retries", 3),                # retry
    ("KafkaSource", "spec.delivery.deadLetterSink.ref.nmae", "x"),
    ("Service", "spec.template.spec.containerconcurrency", 4),
    ("Service", "spec.template.spec.containers.0.livenessProbe.httpGet.paht", "/livez"),
    ("Service", "spec.template.metadata.anotations", {}),
    ("Service", "metadata.lables", {}),
    ("PingSource", "spec.scheduel", "* * * * *"),
    ("KafkaSink", "spec.contentmode", "binary"),
    ("KafkaTopic", "spec.partitons", 3),
    ("Job", "spec.backofflimit", 2),
    ("ConfigMap", "metadata.lables", {}),
    ("Namespace", "spec.finalizer", []),
])
def test_an_undeclared_field_is_an_error(kind: str, path: str, value: Any) -> None:
    doc = mutated(_first(kind), path, value)
    errors = validation_errors(doc)
    wrong = path.rpartition(".")[2]
    assert any(f"'{wrong}' was unexpected" in e for e in errors), errors


@pytest.mark.parametrize(("kind", "path", "value"), [
    ("KafkaSink", "spec.contentMode", "binary-ish"),            # enum
    ("KafkaTopic", "spec.partitions", 0),                       # minimum 1
    ("KafkaSource", "spec.topics", "shop.order.created.v1"),    # a list, not a string
    ("Job", "spec.backoffLimit", "two"),
])
def test_a_wrong_value_is_an_error(kind: str, path: str, value: Any) -> None:
    assert validation_errors(mutated(_first(kind), path, value))


def test_the_commented_sasl_tls_example_validates(tmp_path: Path) -> None:
    """kafka-sources/kustomization.yaml carries a commented `net` patch for SASL/TLS:
    uncommented, it must render and validate, so the example an operator copies works."""
    text = (REPO_ROOT / "kafka-sources" / "kustomization.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index("# patches:")
    example = [re.sub(r"^# ?", "", line) for line in lines[start:]]
    copy = tmp_path / "kafka-sources"
    shutil.copytree(REPO_ROOT / "kafka-sources", copy)
    (copy / "kustomization.yaml").write_text("\n".join(lines[:start] + example) + "\n")
    docs = [d for d in yaml.safe_load_all(_kustomize(copy)) if d]
    sources = [d for d in docs if d["kind"] == "KafkaSource"]
    assert len(sources) == 6
    for source in sources:
        assert source["spec"]["net"]["sasl"]["enable"] is True
        assert source["spec"]["net"]["tls"]["caCert"]["secretKeyRef"]["key"] == "ca.crt"
        assert validation_errors(source) == []
        # The patch adds `net` and changes nothing else.
        original = next(d for d in rendered("dev") if d["kind"] == "KafkaSource"
                        and d["metadata"]["name"] == source["metadata"]["name"])
        del source["spec"]["net"]
        assert source["spec"] == original["spec"]


def _kustomize(directory: Path) -> str:
    import subprocess

    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_render_refuses_an_unknown_overlay() -> None:
    from tools.deploy.manifests import DeployError

    with pytest.raises(DeployError, match=r"no overlay 'staging'.*dev, prod"):
        render(REPO_ROOT, "staging", kubectl())
