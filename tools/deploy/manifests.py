"""An overlay rendered into plain documents: `kubectl kustomize` (kustomize ships inside
kubectl, so the operator's own kubectl renders exactly what it would apply), then a few
helpers to look at the result."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

OVERLAYS = Path("deploy") / "overlays"


class DeployError(RuntimeError):
    """Something `task deploy` cannot do; the message says what and where."""


def overlay_names(root: Path) -> list[str]:
    base = root / OVERLAYS
    return sorted(p.name for p in base.iterdir() if (p / "kustomization.yaml").is_file())


def render(root: Path, overlay: str, kubectl: str = "kubectl") -> list[Doc]:
    directory = root / OVERLAYS / overlay
    if not (directory / "kustomization.yaml").is_file():
        known = ", ".join(overlay_names(root)) or "none"
        raise DeployError(f"no overlay {overlay!r} (expected {directory}/kustomization.yaml; "
                          f"overlays: {known})")
    try:
        done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                              text=True, check=False)
    except FileNotFoundError:
        raise DeployError(f"{kubectl!r} not found: install kubectl (it renders the overlays "
                          "with its built-in kustomize)") from None
    if done.returncode != 0:
        raise DeployError(f"kubectl kustomize {directory} failed:\n{done.stderr.strip()}")
    return parse_documents(done.stdout)


def parse_documents(text: str) -> list[Doc]:
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc:
            raise DeployError(f"not a Kubernetes object: {str(doc)[:80]}")
    return docs


def group_kind(doc: Doc) -> tuple[str, str]:
    api_version = str(doc.get("apiVersion", ""))
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return group, str(doc["kind"])


def name(doc: Doc) -> str:
    return str(doc["metadata"]["name"])


def namespace(doc: Doc) -> str | None:
    value = doc["metadata"].get("namespace")
    return None if value is None else str(value)


def of_kind(docs: Iterable[Doc], group: str, kind: str) -> list[Doc]:
    return [d for d in docs if group_kind(d) == (group, kind)]


def containers(doc: Doc) -> list[dict[str, Any]]:
    """The containers of a pod template (Knative Service, Job), else none."""
    if group_kind(doc) not in (("serving.knative.dev", "Service"), ("batch", "Job")):
        return []
    found: list[dict[str, Any]] = doc["spec"]["template"]["spec"].get("containers", [])
    return found


def with_image(docs: Iterable[Doc], image: str) -> list[Doc]:
    """Every container of every Service and Job set to `image`: one image for the whole
    system, like `kustomize edit set image` but without touching the overlay."""
    result = copy.deepcopy(list(docs))
    for doc in result:
        for container in containers(doc):
            container["image"] = image
    return result


def dump(docs: Iterable[Doc]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False, default_flow_style=False)
