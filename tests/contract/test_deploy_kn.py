"""The `kn` commands `task deploy` runs make the objects the manifests describe.

There is no cluster here, so these tests rebuild each object from its kn command line the
way kn documents its flags (an independent reading of the help text, below, not of
tools/deploy/kn.py) and compare it with the rendered manifest, field for field. Every
flag must also be one the help text lists.

The flag lists are `kn service apply --help` and `kn source ping create|update --help` as
documented in knative/client's docs/cmd/kn_service_apply.md, kn_source_ping_create.md
and kn_source_ping_update.md (the releases with --probe-*, --scale-target and
--security-context), plus the options every kn command inherits.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from tests.contract.k8s_support import OVERLAYS, by_kind, mutated, rendered, services
from tools.deploy import kn
from tools.deploy.manifests import Doc

INHERITED = {"--as", "--as-group", "--as-uid", "--cluster", "--config", "--context",
             "--kubeconfig", "--log-http", "--help"}
KN_SERVICE_APPLY_FLAGS = INHERITED | {
    "--annotation", "--annotation-revision", "--annotation-service", "--arg",
    "--cluster-local", "--cmd", "--concurrency-limit", "--containers", "--env", "--env-file",
    "--env-from", "--env-value-from", "--filename", "--force", "--image", "--label",
    "--label-revision", "--label-service", "--limit", "--lock-to-digest", "--mount",
    "--namespace", "--no-cluster-local", "--no-lock-to-digest", "--no-wait", "--port",
    "--probe-liveness", "--probe-liveness-opts", "--probe-readiness", "--probe-readiness-opts",
    "--pull-policy", "--pull-secret", "--request", "--revision-name", "--scale",
    "--scale-activation", "--scale-init", "--scale-max", "--scale-metric", "--scale-min",
    "--scale-target", "--scale-utilization", "--scale-window", "--security-context",
    "--service-account", "--timeout", "--user", "--volume", "--wait", "--wait-timeout",
    "--wait-window"}
# create and update share these (update also documents --encoding; it is not relied on).
KN_SOURCE_PING_FLAGS = INHERITED | {"--ce-override", "--data", "--namespace", "--schedule",
                                    "--sink"}
KN_SOURCE_PING_DESCRIBE_FLAGS = INHERITED | {"--namespace", "--output", "--verbose"}
# Flags that take no value.
BOOLEAN_FLAGS = {"--cluster-local", "--no-cluster-local", "--force", "--lock-to-digest",
                 "--no-lock-to-digest", "--no-wait", "--wait", "--log-http", "--verbose"}
# kn's `--security-context strict` (the default), as Knative's secure-pod-defaults also
# describes it: no privilege escalation, RuntimeDefault seccomp, all capabilities dropped,
# non-root.
STRICT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
          "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
SCALE_ANNOTATIONS = {"--scale-min": "autoscaling.knative.dev/min-scale",
                     "--scale-max": "autoscaling.knative.dev/max-scale",
                     "--scale-target": "autoscaling.knative.dev/target"}


def flags(argv: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """(flag, value) pairs of a kn command line, positional arguments skipped."""
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            if "=" in arg:
                flag, value = arg.split("=", 1)
                yield flag, value
            elif arg in BOOLEAN_FLAGS:
                yield arg, None
            else:
                i += 1
                yield arg, args[i]
        i += 1


def _pair(value: str | None) -> tuple[str, str]:
    assert value is not None and "=" in value, value
    key, _, rest = value.partition("=")
    return key, rest


def _probe(handler: str, options: str | None) -> dict[str, Any]:
    scheme, host, port, path = handler.split(":")  # [http,https]:host:port:path
    http: dict[str, Any] = {"path": path}
    if host:
        http["host"] = host
    if port:
        http["port"] = int(port) if port.isdigit() else port
    if scheme == "https":
        http["scheme"] = "HTTPS"
    probe: dict[str, Any] = {"httpGet": http}
    names = {n.lower(): n for n in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                                    "successThreshold", "failureThreshold")}
    for option in (options or "").split(",") if options else []:
        key, value = _pair(option)
        probe[names[key.lower()]] = int(value)
    return probe


class _Service:
    """A Service built flag by flag, each flag as kn's help describes it."""

    def __init__(self, name: str) -> None:
        self.meta: dict[str, Any] = {"name": name}
        self.template_meta: dict[str, Any] = {}
        self.pod: dict[str, Any] = {}
        self.c: dict[str, Any] = {}
        self.probes: dict[str, str | None] = {}

    def namespace(self, value: str) -> None:
        self.meta["namespace"] = value

    def image(self, value: str) -> None:
        self.c["image"] = value

    def port(self, value: str) -> None:
        port_name, _, number = value.rpartition(":")
        self.c["ports"] = [{"containerPort": int(number)}
                           | ({"name": port_name} if port_name else {})]

    def env(self, value: str) -> None:
        key, val = _pair(value)
        self.c.setdefault("env", []).append({"name": key, "value": val})

    def env_from(self, value: str) -> None:
        kind, _, ref = value.partition(":")
        field = {"cm": "configMapRef", "config-map": "configMapRef", "secret": "secretRef"}[kind]
        self.c.setdefault("envFrom", []).append({field: {"name": ref}})

    def request(self, value: str) -> None:
        self.c.setdefault("resources", {}).setdefault("requests", {}).update(
            _pair(v) for v in value.split(","))

    def limit(self, value: str) -> None:
        self.c.setdefault("resources", {}).setdefault("limits", {}).update(
            _pair(v) for v in value.split(","))

    def security_context(self, value: str) -> None:
        assert value in ("strict", "none")
        if value == "strict":
            self.c["securityContext"] = copy.deepcopy(STRICT)

    def concurrency_limit(self, value: str) -> None:
        self.pod["containerConcurrency"] = int(value)

    def timeout(self, value: str) -> None:
        self.pod["timeoutSeconds"] = int(value)

    def revision_annotation(self, value: str) -> None:
        self.template_meta.setdefault("annotations", {}).update([_pair(value)])

    def service_annotation(self, value: str) -> None:
        self.meta.setdefault("annotations", {}).update([_pair(value)])

    def service_label(self, value: str) -> None:
        self.meta.setdefault("labels", {}).update([_pair(value)])

    def revision_label(self, value: str) -> None:
        self.template_meta.setdefault("labels", {}).update([_pair(value)])

    def cluster_local(self, _: str) -> None:
        self.meta.setdefault("labels", {})["networking.knative.dev/visibility"] = "cluster-local"

    def public(self, _: str) -> None:
        """--no-cluster-local: no visibility label."""

    def doc(self) -> Doc:
        for kind, field in (("readiness", "readinessProbe"), ("liveness", "livenessProbe")):
            handler = self.probes.get(f"--probe-{kind}")
            if handler is not None:
                self.c[field] = _probe(handler, self.probes.get(f"--probe-{kind}-opts"))
        template: dict[str, Any] = {"spec": {**self.pod, "containers": [self.c]}}
        if self.template_meta:
            template["metadata"] = self.template_meta
        return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                "metadata": self.meta, "spec": {"template": template}}


_SERVICE_FLAGS: dict[str, Callable[[_Service, str], None]] = {
    "--namespace": _Service.namespace, "--image": _Service.image, "--port": _Service.port,
    "--env": _Service.env, "--env-from": _Service.env_from, "--request": _Service.request,
    "--limit": _Service.limit, "--security-context": _Service.security_context,
    "--concurrency-limit": _Service.concurrency_limit, "--timeout": _Service.timeout,
    "--annotation-revision": _Service.revision_annotation,
    "--annotation-service": _Service.service_annotation,
    "--label-service": _Service.service_label, "--label-revision": _Service.revision_label,
    "--cluster-local": _Service.cluster_local, "--no-cluster-local": _Service.public,
}


def service_from_kn(argv: Sequence[str]) -> Doc:
    """The Service `kn service apply` makes from these arguments, per kn's help text."""
    assert list(argv[:3]) == ["kn", "service", "apply"]
    service = _Service(argv[3])
    for flag, value in flags(argv[4:]):
        if flag in SCALE_ANNOTATIONS:
            service.revision_annotation(f"{SCALE_ANNOTATIONS[flag]}={value}")
        elif flag.startswith("--probe-"):
            service.probes[flag] = value
        elif flag in _SERVICE_FLAGS:
            _SERVICE_FLAGS[flag](service, value or "")
        else:
            raise AssertionError(f"this reading of kn's help has no meaning for {flag}")
    return service.doc()


def ping_source_from_kn(argv: Sequence[str]) -> Doc:
    assert list(argv[:3]) == ["kn", "source", "ping"] and argv[3] in ("create", "update")
    meta: dict[str, Any] = {"name": argv[4]}
    spec: dict[str, Any] = {}
    for flag, value in flags(argv[5:]):
        if flag == "--namespace":
            meta["namespace"] = value
        elif flag == "--schedule":
            spec["schedule"] = value
        elif flag == "--data":
            spec["data"] = value
        elif flag == "--sink":
            assert value is not None
            kind, name, *namespace = value.split(":")
            assert kind == "ksvc"
            ref = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name}
            spec["sink"] = {"ref": ref | ({"namespace": namespace[0]} if namespace else {})}
        elif flag == "--ce-override":
            spec.setdefault("ceOverrides", {}).setdefault("extensions", {}).update(
                [_pair(value)])
        else:
            raise AssertionError(f"no meaning for {flag}")
    return {"apiVersion": "sources.knative.dev/v1", "kind": "PingSource", "metadata": meta,
            "spec": spec}


def _normalized(doc: Doc) -> Doc:
    """Quantities and integers as kn prints them (strings in flags)."""
    result = copy.deepcopy(doc)
    for service_container in result["spec"].get("template", {}).get("spec", {}).get(
            "containers", []):
        for section in service_container.get("resources", {}).values():
            for key in section:
                section[key] = str(section[key])
    return result


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kn_service_apply_makes_the_manifests_service(overlay: str) -> None:
    found = services(rendered(overlay))
    assert len(found) == 11
    for name, service in found.items():
        argv = kn.service_apply(service)
        unknown = {f for f, _ in flags(argv[4:])} - KN_SERVICE_APPLY_FLAGS
        assert unknown == set(), (name, unknown)
        assert _normalized(service_from_kn(argv)) == _normalized(service), name


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("verb", ["create", "update"])
def test_kn_source_ping_makes_the_manifests_ping_source(overlay: str, verb: str) -> None:
    found = by_kind(rendered(overlay), "sources.knative.dev", "PingSource")
    assert len(found) == 3
    for name, ping in found.items():
        argv = kn.ping_source(ping, verb)  # type: ignore[arg-type]
        assert {f for f, _ in flags(argv[5:])} <= KN_SOURCE_PING_FLAGS
        expected = copy.deepcopy(ping)
        expected["metadata"].pop("labels", None)  # set by `kubectl label` after kn
        assert ping_source_from_kn(argv) == expected, name


@pytest.mark.parametrize(("path", "value", "message"), [
    ("spec.template.spec.containers.0.command", ["sh"], "no kn flag for command"),
    ("spec.template.spec.volumes", [], "no kn flag for volumes"),
    ("spec.template.spec.containers.0.name", "user", "no kn flag for name"),
    ("spec.template.spec.containers.0.securityContext.readOnlyRootFilesystem", True,
     "securityContext"),
    ("spec.template.spec.containers.0.env.0.valueFrom", {"secretKeyRef": {}}, "valueFrom"),
    ("spec.traffic", [], "no kn flag for traffic"),
])
def test_a_field_kn_cannot_set_is_refused_not_dropped(path: str, value: Any,
                                                      message: str) -> None:
    service = mutated(services(rendered("dev"))["inventory"], path, value)
    with pytest.raises(kn.Unsupported, match=message):
        kn.service_apply(service)


def test_a_visibility_kn_cannot_set_is_refused() -> None:
    service = services(rendered("dev"))["inventory"]
    service["metadata"]["labels"]["networking.knative.dev/visibility"] = "cluster-wide"
    with pytest.raises(kn.Unsupported, match="visibility"):
        kn.service_apply(service)


@pytest.mark.parametrize(("field", "value"), [
    ("contentType", "application/json"), ("timezone", "Europe/Berlin"),
    ("dataBase64", "aGk="), ("data", "aGk=")])
def test_ping_source_fields_kn_cannot_set_are_refused(field: str, value: str) -> None:
    ping = by_kind(rendered("dev"), "sources.knative.dev", "PingSource")["timeouts-ping"]
    ping["spec"][field] = value
    with pytest.raises(kn.Unsupported):
        kn.ping_source(ping, "create")


def test_the_strict_security_context_is_kns() -> None:
    assert kn.STRICT_SECURITY_CONTEXT == STRICT
