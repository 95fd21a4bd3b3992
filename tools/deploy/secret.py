"""The Secrets `task deploy` makes from environment variables at deploy time: saga-secrets
(every function's) and saga-bootstrap (the first admin, read by the bootstrap Job only).

Each one's keys are those its template in knative/cluster/ lists (the template is the one
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

CLUSTER = Path("knative") / "cluster"
TEMPLATE = CLUSTER / "secret.template.yaml"
REQUIRED = ("DATABASE_URL", "SAGA_JWT_SECRET")
BOOTSTRAP_TEMPLATE = CLUSTER / "bootstrap-secret.template.yaml"
BOOTSTRAP_REQUIRED = ("SAGA_BOOTSTRAP_ADMIN_USERNAME", "SAGA_BOOTSTRAP_ADMIN_PASSWORD")


@dataclass(frozen=True)
class SecretSpec:
    name: str
    keys: tuple[str, ...]
    required: tuple[str, ...] = REQUIRED
    # The pods run without it (an optional secretRef): without its variables a deploy
    # neither makes it nor needs one in the cluster.
    optional: bool = False

    @classmethod
    def load(cls, root: Path, template: Path = TEMPLATE, required: tuple[str, ...] = REQUIRED,
             *, optional: bool = False) -> SecretSpec:
        doc = yaml.safe_load((root / template).read_text(encoding="utf-8"))
        keys = tuple(doc.get("stringData", {}))
        missing = [k for k in required if k not in keys]
        if missing:
            raise DeployError(f"{template} lacks the required key(s) {', '.join(missing)}")
        return cls(str(doc["metadata"]["name"]), keys, required, optional)

    def values(self, environ: Mapping[str, str]) -> dict[str, str] | None:
        """The keys set in `environ`; None when none of the required ones is (leave the
        Secret in the cluster as it is). Only some of them set is an error."""
        given = {k: environ[k] for k in self.keys if environ.get(k)}
        required = [k for k in self.required if k in given]
        if not required:
            return None
        if len(required) != len(self.required):
            missing = ", ".join(k for k in self.required if k not in given)
            raise DeployError(f"set {missing} too (or none of {', '.join(self.required)} to "
                              f"leave the Secret {self.name} in the cluster as it is)")
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


def load_secrets(root: Path) -> list[SecretSpec]:
    """The Secrets a deploy makes, in the order it makes them."""
    return [SecretSpec.load(root),
            SecretSpec.load(root, BOOTSTRAP_TEMPLATE, BOOTSTRAP_REQUIRED, optional=True)]
