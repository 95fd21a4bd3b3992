"""A Knative Service or PingSource manifest as the `kn` command that makes the same object.
`kn service apply` is declarative (what a run leaves out is removed), so the flags must
carry every field of the manifest: each field maps to its documented flag (knative/client
docs/cmd/kn_service_apply.md, kn_source_ping_create.md), and a field with no flag is
refused, naming the object and field, never dropped. tests/contract/test_deploy_kn.py
rebuilds each object from the flags and compares it with the manifest."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Literal

from tools.deploy.manifests import DeployError, Doc, group_kind, name, namespace

# What `--security-context strict` (kn's default) puts on the container.
STRICT_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}

VISIBILITY_LABEL = "networking.knative.dev/visibility"
# Revision annotations with flags of their own; any other goes through --annotation-revision.
SCALE_FLAGS = {
    "autoscaling.knative.dev/min-scale": "--scale-min",
    "autoscaling.knative.dev/max-scale": "--scale-max",
    "autoscaling.knative.dev/target": "--scale-target",
}
# kn's --probe-*-opts names (case-insensitive there) for the Probe fields.
PROBE_OPTIONS = {
    "initialDelaySeconds": "InitialDelaySeconds",
    "timeoutSeconds": "TimeoutSeconds",
    "periodSeconds": "PeriodSeconds",
    "successThreshold": "SuccessThreshold",
    "failureThreshold": "FailureThreshold",
}


class Unsupported(DeployError):
    """A manifest field that `kn` has no flag for."""


class _Fields:
    """Takes fields out of one mapping; whatever is left over was not mapped to a flag."""

    def __init__(self, value: Any, where: str) -> None:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise Unsupported(f"{where}: expected a mapping")
        self.left = dict(value)
        self.where = where

    def take(self, key: str) -> Any:
        return self.left.pop(key, None)

    def done(self) -> None:
        if self.left:
            raise Unsupported(f"{self.where}: no kn flag for {', '.join(sorted(self.left))}")


def service_apply(doc: Doc, kn: str = "kn") -> list[str]:
    """`kn service apply NAME ...` for a serving.knative.dev/v1 Service."""
    if group_kind(doc) != ("serving.knative.dev", "Service"):
        raise Unsupported(f"{doc.get('kind')} {name(doc)} is not a Knative Service")
    where = f"Service {name(doc)}"
    root = _Fields(doc, where)
    root.take("apiVersion")
    root.take("kind")
    meta = _Fields(root.take("metadata"), f"{where}: metadata")
    args = [kn, "service", "apply", str(meta.take("name"))]
    ns = meta.take("namespace")
    if ns is not None:
        args += ["--namespace", str(ns)]
    labels = dict(meta.take("labels") or {})
    visibility = labels.pop(VISIBILITY_LABEL, None)
    service_annotations = meta.take("annotations") or {}
    meta.done()

    spec = _Fields(root.take("spec"), f"{where}: spec")
    template = _Fields(spec.take("template"), f"{where}: spec.template")
    spec.done()
    root.done()
    tmeta = _Fields(template.take("metadata"), f"{where}: spec.template.metadata")
    revision_annotations = dict(tmeta.take("annotations") or {})
    revision_labels = tmeta.take("labels") or {}
    tmeta.done()
    pod = _Fields(template.take("spec"), f"{where}: spec.template.spec")
    template.done()

    args += _container_flags(pod, where)
    concurrency = pod.take("containerConcurrency")
    if concurrency is not None:
        args += ["--concurrency-limit", str(concurrency)]
    timeout = pod.take("timeoutSeconds")
    if timeout is not None:
        args += ["--timeout", str(timeout)]
    pod.done()

    for key, flag in SCALE_FLAGS.items():
        if key in revision_annotations:
            args += [flag, str(revision_annotations.pop(key))]
    args += _pairs("--annotation-revision", revision_annotations)
    args += _pairs("--annotation-service", service_annotations)
    args += _pairs("--label-service", labels)
    args += _pairs("--label-revision", revision_labels)
    if visibility == "cluster-local":
        args.append("--cluster-local")
    elif visibility is None:
        args.append("--no-cluster-local")
    else:
        raise Unsupported(f"{where}: {VISIBILITY_LABEL}={visibility!r} has no kn flag")
    return args


def _container_flags(pod: _Fields, where: str) -> list[str]:
    containers = pod.take("containers")
    if not isinstance(containers, list) or len(containers) != 1:
        raise Unsupported(f"{where}: kn service apply makes exactly one container")
    c = _Fields(containers[0], f"{where}: container")
    args = ["--image", str(c.take("image"))]
    for port in c.take("ports") or []:
        p = _Fields(port, f"{where}: container port")
        number, port_name = p.take("containerPort"), p.take("name")
        p.done()
        args += ["--port", f"{port_name}:{number}" if port_name else str(number)]
    for entry in c.take("env") or []:
        e = _Fields(entry, f"{where}: env")
        env_name, value = e.take("name"), e.take("value")
        e.done()  # valueFrom would need --env-value-from; none is used
        args += ["--env", f"{env_name}={'' if value is None else value}"]
    for source in c.take("envFrom") or []:
        s = _Fields(source, f"{where}: envFrom")
        config_map, secret = s.take("configMapRef"), s.take("secretRef")
        s.done()
        ref = config_map or secret
        if ref is None or set(ref) != {"name"} or (config_map and secret):
            raise Unsupported(f"{where}: envFrom {source!r}: only a plain configMapRef or "
                              "secretRef has a kn flag")
        args += ["--env-from", f"{'cm' if config_map else 'secret'}:{ref['name']}"]
    resources = _Fields(c.take("resources"), f"{where}: resources")
    for field, flag in (("requests", "--request"), ("limits", "--limit")):
        amounts = resources.take(field)
        if amounts:
            args += [flag, ",".join(f"{k}={v}" for k, v in amounts.items())]
    resources.done()
    for field, flag in (("readinessProbe", "--probe-readiness"),
                        ("livenessProbe", "--probe-liveness")):
        probe = c.take(field)
        if probe is not None:
            args += _probe_flags(probe, flag, f"{where}: {field}")
    security = c.take("securityContext")
    if security is None:
        args += ["--security-context", "none"]
    elif security == STRICT_SECURITY_CONTEXT:
        args += ["--security-context", "strict"]
    else:
        raise Unsupported(f"{where}: securityContext: kn sets only 'strict' "
                          f"({STRICT_SECURITY_CONTEXT}) or none")
    c.done()
    return args


def _probe_flags(probe: Mapping[str, Any], flag: str, where: str) -> list[str]:
    p = _Fields(probe, where)
    http = _Fields(p.take("httpGet"), f"{where}.httpGet")
    scheme = str(http.take("scheme") or "HTTP").lower()
    host, port, path = http.take("host") or "", http.take("port"), http.take("path") or ""
    http.done()
    # kn's format is [http,https]:host:port:path, split on ':'.
    if ":" in f"{host}{path}" or scheme not in ("http", "https"):
        raise Unsupported(f"{where}: kn cannot express host {host!r} / path {path!r}")
    handler = f"{scheme}:{host}:{'' if port is None else port}:{path}"
    options = [f"{opt}={p.take(field)}" for field, opt in PROBE_OPTIONS.items()
               if field in p.left]
    p.done()
    args = [flag, handler]
    if options:
        args += [f"{flag}-opts", ",".join(options)]
    return args


def _pairs(flag: str, values: Mapping[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in values.items():
        args += [flag, f"{key}={value}"]
    return args


def ping_source(doc: Doc, verb: Literal["create", "update"], kn: str = "kn") -> list[str]:
    """`kn source ping create|update NAME ...` for a sources.knative.dev/v1 PingSource.
    Its labels and annotations are not kn's business (no flags): see `metadata_commands`."""
    if group_kind(doc) != ("sources.knative.dev", "PingSource"):
        raise Unsupported(f"{doc.get('kind')} {name(doc)} is not a PingSource")
    where = f"PingSource {name(doc)}"
    spec = _Fields(doc.get("spec"), f"{where}: spec")
    args = [kn, "source", "ping", verb, name(doc)]
    ns = namespace(doc)
    if ns is not None:
        args += ["--namespace", ns]
    schedule = spec.take("schedule")
    if schedule is not None:
        args += ["--schedule", str(schedule)]
    data = spec.take("data")
    if data is not None:
        # kn guesses the encoding (its --encoding flag is not documented for `create` in
        # every release): data that decodes as base64 would be sent decoded.
        if _is_base64(str(data)):
            raise Unsupported(f"{where}: spec.data {data!r} reads as base64 to kn")
        args += ["--data", str(data)]
    overrides = _Fields(spec.take("ceOverrides"), f"{where}: spec.ceOverrides")
    for key, value in (overrides.take("extensions") or {}).items():
        args += ["--ce-override", f"{key}={value}"]
    overrides.done()
    sink = _Fields(spec.take("sink"), f"{where}: spec.sink")
    ref = _Fields(sink.take("ref"), f"{where}: spec.sink.ref")
    sink.done()
    if (ref.take("apiVersion"), ref.take("kind")) != ("serving.knative.dev/v1", "Service"):
        raise Unsupported(f"{where}: spec.sink: only a Knative Service ref is mapped (ksvc:)")
    sink_name, sink_ns = ref.take("name"), ref.take("namespace")
    ref.done()
    args += ["--sink", f"ksvc:{sink_name}" + (f":{sink_ns}" if sink_ns else "")]
    spec.done()  # contentType, timezone, dataBase64: no kn flag
    return args


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
