"""The Secret saga-secrets, made from environment variables at deploy time.

Its keys are the ones knative/cluster/secret.template.yaml lists (the template is the one
place that says what the Secret holds). The values go to `kubectl apply -f -` on stdin:
never into a file, an argument list (visible in `ps`) or the dry-run output, which shows
`$NAME` references instead.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools.deploy.manifests import DeployError, Doc, dump

TEMPLATE = Path("knative") / "cluster" / "secret.template.yaml"
REQUIRED = ("DATABASE_URL", "SAGA_JWT_SECRET")


@dataclass(frozen=True)
class SecretSpec:
    name: str
    keys: tuple[str, ...]

    @classmethod
    def load(cls, root: Path) -> SecretSpec:
        doc = yaml.safe_load((root / TEMPLATE).read_text(encoding="utf-8"))
        keys = tuple(doc.get("stringData", {}))
        missing = [k for k in REQUIRED if k not in keys]
        if missing:
            raise DeployError(f"{TEMPLATE} lacks the required key(s) {', '.join(missing)}")
        return cls(str(doc["metadata"]["name"]), keys)

    def values(self, environ: Mapping[str, str]) -> dict[str, str] | None:
        """The keys set in `environ`; None when none of the required ones is (keep the
        Secret already in the cluster). Only some of them set is an error."""
        given = {k: environ[k] for k in self.keys if environ.get(k)}
        required = [k for k in REQUIRED if k in given]
        if not required:
            return None
        if len(required) != len(REQUIRED):
            missing = ", ".join(k for k in REQUIRED if k not in given)
            raise DeployError(f"set {missing} too (or none of {', '.join(REQUIRED)} to keep "
                              f"the Secret {self.name} that is in the cluster)")
        return given

    def manifest(self, namespace: str, values: Mapping[str, str]) -> Doc:
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": self.name, "namespace": namespace,
                             "labels": {"app.kubernetes.io/part-of": "order-saga"}},
                "stringData": dict(values)}

    def yaml(self, namespace: str, values: Mapping[str, str]) -> str:
        return dump([self.manifest(namespace, values)])

    def shown(self, namespace: str, keys: tuple[str, ...] | list[str],
              kubectl: str = "kubectl") -> str:
        """A shell pipeline that makes the same Secret from the same variables: what the
        dry run prints in place of the values."""
        literals = " ".join(f'--from-literal={k}="${k}"' for k in keys)
        return (f"{shlex.quote(kubectl)} create secret generic {self.name} --namespace "
                f"{namespace} {literals} --dry-run=client --output=yaml "
                f"| {shlex.quote(kubectl)} apply -f -")
