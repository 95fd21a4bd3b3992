"""The Kubernetes side of elk/: ECK resources validate against the ECK CRDs' schemas (read
from the project's shared folder, never copied here), the pieces name each other right
(services, secrets, ConfigMap keys, versions), and both Filebeat routes agree.

CRD validation is stricter than the API server's pruning: a field the schema does not
declare is an error, except under x-kubernetes-preserve-unknown-fields (config, podTemplate
itself), exactly where ECK accepts free-form content.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.contract import ELK, SCHEMAS

ECK = ELK / "eck"
ECK_SCHEMAS = SCHEMAS / "eck"
ECK_GROUPS = ("elasticsearch.k8s.elastic.co", "kibana.k8s.elastic.co", "beat.k8s.elastic.co",
              "logstash.k8s.elastic.co")
HINTS = {
    "co.elastic.logs.user-container/enabled": "true",
    "co.elastic.logs.user-container/json.target": "",
    "co.elastic.logs.user-container/json.overwrite_keys": "true",
    "co.elastic.logs.user-container/json.expand_keys": "true",
    "co.elastic.logs.user-container/json.add_error_key": "true",
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
            if d]


def _eck_resources() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{p.name}:{d['kind']}", d) for p in sorted(ECK.glob("*.yaml"))
            for d in _documents(p) if d["apiVersion"].split("/")[0] in ECK_GROUPS]


def _closed(schema: Any) -> Any:
    """The schema with additionalProperties: false wherever Kubernetes would prune unknown
    fields (an object with declared properties and no preserve-unknown-fields)."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {k: _closed(v) for k, v in schema.items()}
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        closed["additionalProperties"] = False
    return closed


@functools.cache
def _crd_schemas() -> dict[tuple[str, str, str], Any]:
    """(group, version, kind) -> the closed openAPIV3Schema of every served version."""
    schemas = {}
    for path in sorted(ECK_SCHEMAS.glob("*.yaml")):
        for crd in _documents(path):
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    key = (spec["group"], version["name"], spec["names"]["kind"])
                    schemas[key] = _closed(version["schema"]["openAPIV3Schema"])
    return schemas


needs_schemas = pytest.mark.skipif(
    not ECK_SCHEMAS.is_dir(),
    reason=f"no ECK CRD schemas at {ECK_SCHEMAS} (the project's shared folder is not here)")


@needs_schemas
@pytest.mark.parametrize(("name", "resource"), _eck_resources(), ids=lambda v: str(v)[:40])
def test_eck_resources_validate_against_their_crd(name: str, resource: dict[str, Any]) -> None:
    group, version = resource["apiVersion"].split("/")
    schema = _crd_schemas().get((group, version, resource["kind"]))
    assert schema is not None, f"{name}: {resource['apiVersion']} is not a served version"
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(resource), key=str)
    assert not errors, "\n".join(
        f"{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors)


@needs_schemas
def test_the_strict_validation_catches_a_misspelled_field() -> None:
    schema = _crd_schemas()[("logstash.k8s.elastic.co", "v1alpha1", "Logstash")]
    [(_, logstash)] = [r for r in _eck_resources() if r[1]["kind"] == "Logstash"]
    broken = {**logstash, "spec": {**logstash["spec"], "elasticsearchRef": [{"name": "x"}]}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))
    free_form = {**logstash, "spec": {**logstash["spec"], "config": {"any.setting": 1}}}
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(free_form))


def _resource(kind: str) -> dict[str, Any]:
    [resource] = [r for _, r in _eck_resources() if r["kind"] == kind]
    return resource


def test_one_elastic_version_everywhere() -> None:
    versions = {r["spec"]["version"] for _, r in _eck_resources()}
    images = re.findall(r"docker\.elastic\.co/[\w/-]+:(?:\$\{ELASTIC_VERSION:-)?([\d.]+)",
                        "".join(p.read_text() for p in ELK.rglob("*.y*ml")))
    assert len(versions) == 1 and set(images) == versions, (versions, images)


def test_the_pieces_name_each_other() -> None:
    es, kibana = _resource("Elasticsearch"), _resource("Kibana")
    logstash, beat = _resource("Logstash"), _resource("Beat")
    name = es["metadata"]["name"]
    assert kibana["spec"]["elasticsearchRef"]["name"] == name
    [ref] = logstash["spec"]["elasticsearchRefs"]
    assert ref == {"name": name, "clusterName": "eck"}  # ECK_ES_* in outputs/eck.conf
    assert "${ECK_ES_HOSTS}" in (ELK / "logstash" / "outputs" / "eck.conf").read_text()
    # Filebeat ships to the Service ECK makes for the "beats" service: <name>-ls-beats.
    [service] = logstash["spec"]["services"]
    [port] = service["service"]["spec"]["ports"]
    host = f"{logstash['metadata']['name']}-ls-{service['name']}:{port['port']}"
    assert f"port => {port['targetPort']}" in (ELK / "logstash/pipeline/saga.conf").read_text()
    assert host in str(beat["spec"]["config"]["output.logstash"]["hosts"])
    job = _documents(ECK / "import-job.yaml")[0]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in job["containers"][0]["env"]}
    assert env["ES_URL"]["value"] == f"https://{name}-es-http:9200"
    assert env["KIBANA_URL"]["value"] == f"https://{kibana['metadata']['name']}-kb-http:5601"
    assert env["ELK_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{name}-es-elastic-user", "key": "elastic"}


def test_configmaps_carry_the_repository_files() -> None:
    kustomization = yaml.safe_load((ELK / "kustomization.yaml").read_text())
    generated = {g["name"]: {Path(f).name: ELK / f for f in g["files"]}
                 for g in kustomization["configMapGenerator"]}
    for files in generated.values():
        assert all(path.is_file() for path in files.values()), files
    mounts = [
        (_resource("Logstash")["spec"]["podTemplate"]["spec"]["volumes"]),
        (_documents(ECK / "import-job.yaml")[0]["spec"]["template"]["spec"]["volumes"]),
    ]
    for volumes in mounts:
        for volume in volumes:
            if "configMap" in volume:
                keys = {item["key"] for item in volume["configMap"]["items"]}
                assert keys <= set(generated[volume["configMap"]["name"]]), keys
    job_items = mounts[1][0]["configMap"]["items"]
    for item in job_items:  # the Job sees elk/ with the repository's layout
        assert generated["saga-elk-setup"][item["key"]] == ELK / item["path"]
    assert set(kustomization["resources"]) == {
        str(p.relative_to(ELK)) for p in ECK.glob("*.yaml")} | {"filebeat/rbac.yaml"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
def test_kustomize_renders_the_stack() -> None:
    for folder in (ELK, ELK / "filebeat"):
        result = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True,
                                text=True, check=False, timeout=60)
        assert result.returncode == 0, result.stderr
        kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout) if d]
        assert "ConfigMap" in kinds and "ServiceAccount" in kinds, kinds


def test_both_filebeat_routes_have_the_same_settings() -> None:
    plain = yaml.safe_load((ELK / "filebeat" / "filebeat.yml").read_text())
    assert _resource("Beat")["spec"]["config"] == plain
    [provider] = plain["filebeat.autodiscover"]["providers"]
    assert provider["hints.enabled"] is True
    # Nothing is collected unless a pod opts in: queue-proxy and other pods stay out.
    assert provider["hints.default_config"]["enabled"] is False


def test_local_filebeat_tails_the_runtime_logs() -> None:
    local = yaml.safe_load((ELK / "filebeat" / "filebeat-local.yml").read_text())
    [stream] = local["filebeat.inputs"]
    assert stream["type"] == "filestream" and stream["paths"] == ["/saga-logs/*.ndjson"]
    assert stream["parsers"] == [{"ndjson": {"target": "", "overwrite_keys": True,
                                             "expand_keys": True, "add_error_key": True}}]
    compose = yaml.safe_load((ELK / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"elasticsearch", "kibana", "setup", "logstash", "filebeat"}
    assert "${SAGA_LOGS_DIR:-../.local/logs}:/saga-logs:ro" in services["filebeat"]["volumes"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ELK / source).exists(), volume
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{port}: the local stack has no security"


def _knative_services() -> list[dict[str, Any]]:
    return [doc for path in sorted((ELK.parent / "knative").glob("*.yaml"))
            for doc in _documents(path)
            if doc.get("kind") == "Service" and doc["apiVersion"].startswith("serving.knative")]


def test_every_knative_function_opts_in_to_log_shipping() -> None:
    """Filebeat collects a container only when its pod opts in by container name (the
    hints above). `kn service apply` cannot name a container, so Knative calls it
    "user-container": every Service leaves it unnamed (or names it so) and carries the
    hints; queue-proxy, which Knative adds, never matches."""
    services = _knative_services()
    if not services:
        pytest.skip("no Knative Service in knative/")
    problems = {}
    for service in services:
        template = service["spec"]["template"]
        names = [c.get("name") or "user-container" for c in template["spec"]["containers"]]
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        missing = sorted(k for k, v in HINTS.items() if annotations.get(k) != v)
        if names != ["user-container"] or missing:
            problems[service["metadata"]["name"]] = {"containers": names, "missing": missing}
    assert not problems, f"Filebeat would not collect these functions' logs: {problems}"
