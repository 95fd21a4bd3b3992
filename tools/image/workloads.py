"""The Knative Services and the Jobs of a rendered overlay (tools.deploy.manifests.render) as
containers of the image: each pod template's one container, with the environment its
envFrom names (the overlay's ConfigMaps, plus the Secrets given) and what Knative adds to a
Service's (PORT when it starts, K_SERVICE, K_CONFIGURATION, K_REVISION).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.deploy.manifests import Doc, containers, name, of_kind
from tools.deploy.secret import SecretSpec
from tools.image.container import Container, ContainerError, ImageConfig, container_for
from tools.settings import KafkaBrokerKind, broker_env

SAGA_CONFIG = "configMap/saga-config"  # as env_sources keys it
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)([KMGTE]i?|[mk])?$")
_UNITS = {None: 1, "m": 0.001, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "E": 1e18,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Ei": 2**60}


@dataclass(frozen=True)
class Workload:
    kind: str  # "Service" (Knative) or "Job"
    name: str
    container: Container
    manifest: Mapping[str, Any]  # the container as the manifest states it
    spec: Mapping[str, Any]  # the object's spec (a Job's backoffLimit, ...)

    def probe_path(self, probe: str) -> str | None:
        """httpGet.path of readinessProbe / livenessProbe, if it has one."""
        get = (self.manifest.get(probe) or {}).get("httpGet") or {}
        path = get.get("path")
        return None if path is None else str(path)

    @property
    def memory_limit(self) -> int | None:
        """resources.limits.memory in bytes, if set."""
        value = ((self.manifest.get("resources") or {}).get("limits") or {}).get("memory")
        return None if value is None else quantity(str(value))


def env_sources(docs: Sequence[Doc], secrets: Mapping[str, Mapping[str, str]],
                config: Mapping[str, str] | None = None) -> dict[str, Mapping[str, str]]:
    """What envFrom can name: every ConfigMap of `docs` (with `config` replacing some of
    their keys, e.g. the cluster's addresses by a test's), and `secrets` by name."""
    sources: dict[str, Mapping[str, str]] = {}
    for doc in of_kind(docs, "", "ConfigMap"):
        data = {k: str(v) for k, v in (doc.get("data") or {}).items()}
        sources[f"configMap/{name(doc)}"] = data | {
            k: v for k, v in (config or {}).items() if k in data}
    for secret, values in secrets.items():
        sources[f"secret/{secret}"] = dict(values)
    return sources


def workloads(docs: Sequence[Doc], image: ImageConfig, rootfs: Path,
              sources: Mapping[str, Mapping[str, str]]) -> list[Workload]:
    """Every Knative Service and Job of `docs`, in their order."""
    found: list[Workload] = []
    for doc in docs:
        kind = str(doc.get("kind"))
        pod = (doc.get("spec") or {}).get("template", {}).get("spec", {})
        for manifest in containers(doc):
            runtime = {}
            if kind == "Service":
                revision = f"{name(doc)}-00001"
                runtime = {"K_SERVICE": name(doc), "K_CONFIGURATION": name(doc),
                           "K_REVISION": revision}
            try:
                container = container_for(name(doc), manifest, image, rootfs, sources,
                                          pod_security=pod.get("securityContext"),
                                          runtime_env=runtime,
                                          volumes=pod.get("volumes") or ())
            except ContainerError as exc:
                raise ContainerError(f"{kind} {name(doc)}: {exc}") from None
            found.append(Workload(kind, name(doc), container, manifest, doc.get("spec") or {}))
    return found


def local_workloads(docs: Sequence[Doc], image: ImageConfig, rootfs: Path, secret: SecretSpec,
                    *, database_url: str, kafka_bootstrap: str, broker_kind: KafkaBrokerKind,
                    jwt_secret: str) -> list[Workload]:
    """workloads() on this machine's PostgreSQL and broker instead of the cluster's: the
    Secret made from DATABASE_URL and SAGA_JWT_SECRET as `task deploy` makes it, saga-config's
    broker address replaced and the broker's flags added (what `./taskw up` tells its
    functions: tools/settings.py broker_env)."""
    values = secret.values({"DATABASE_URL": database_url, "SAGA_JWT_SECRET": jwt_secret})
    if values is None:
        raise ContainerError("the Secret needs DATABASE_URL and SAGA_JWT_SECRET")
    sources = env_sources(docs, {secret.name: values},
                          {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    if SAGA_CONFIG in sources:  # it sets no flag: Apache Kafka's defaults
        sources[SAGA_CONFIG] = {**sources[SAGA_CONFIG], **broker_env(broker_kind)}
    return workloads(docs, image, rootfs, sources)


def quantity(text: str) -> int:
    """A Kubernetes quantity ("512Mi", "1G", "250m") as a whole number."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])
