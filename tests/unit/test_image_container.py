"""What a node runs for a manifest's container in the image (tools/image/container.py), by
Kubernetes' rules; the image tier's environment (tools/image/workloads.py); Kubernetes
quantities; the pip settings a build gets as secrets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pytest

from tools.deploy.secret import SecretSpec
from tools.image.container import ContainerError, ImageConfig, container_for, expand
from tools.image.pip_config import build_secrets
from tools.image.workloads import local_workloads, quantity

IMAGE = ImageConfig(user="10001:10001", env={"PATH": "/opt/venv/bin:/usr/bin", "A": "image"},
                    workdir="/app", entrypoint=(), cmd=("python", "-m", "common.serving"))
SOURCES = {"configMap/cfg": {"A": "config", "B": "config"}, "secret/sec": {"B": "secret"}}


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nsaga:x:10001:10001::/nonexistent:/usr/sbin/nologin\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nsaga:x:10001:\nstaff:x:50:\n")
    return tmp_path


def test_command_replaces_the_entrypoint_and_args_the_cmd(rootfs: Path) -> None:
    plain = container_for("f", {}, IMAGE, rootfs, {})
    assert plain.argv == ("python", "-m", "common.serving")
    command = container_for("f", {"command": ["alembic", "upgrade", "head"]}, IMAGE, rootfs, {})
    assert command.argv == ("alembic", "upgrade", "head")  # the image's CMD is dropped
    with_entrypoint = ImageConfig(IMAGE.user, IMAGE.env, IMAGE.workdir, ("tini", "--"),
                                  IMAGE.cmd)
    args = container_for("f", {"args": ["python", "-V"]}, with_entrypoint, rootfs, {})
    assert args.argv == ("tini", "--", "python", "-V")


def test_env_is_the_images_then_env_from_then_env_then_the_platforms(rootfs: Path) -> None:
    manifest = {"envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "sec"}}],
                "env": [{"name": "C", "value": "$(A)-$(B)-$(MISSING)-$$(A)"},
                        {"name": "PORT", "value": "1"}]}
    container = container_for("f", manifest, IMAGE, rootfs, SOURCES,
                              runtime_env={"PORT": "8080"})
    assert container.env["PATH"] == "/opt/venv/bin:/usr/bin"
    assert (container.env["A"], container.env["B"]) == ("config", "secret")
    assert container.env["C"] == "config-secret-$(MISSING)-$(A)"
    assert container.env["PORT"] == "8080"
    assert expand("$(A)", {"A": "x"}) == "x"


def test_a_missing_source_is_refused_unless_optional(rootfs: Path) -> None:
    with pytest.raises(ContainerError, match="configMap 'nope'"):
        container_for("f", {"envFrom": [{"configMapRef": {"name": "nope"}}]}, IMAGE, rootfs,
                      SOURCES)
    optional = {"envFrom": [{"configMapRef": {"name": "nope", "optional": True}}]}
    assert container_for("f", optional, IMAGE, rootfs, SOURCES).env["A"] == "image"
    with pytest.raises(ContainerError, match="valueFrom"):
        container_for("f", {"env": [{"name": "X", "valueFrom": {}}]}, IMAGE, rootfs, SOURCES)


def test_config_map_and_secret_volumes_are_the_files_of_their_mounts(rootfs: Path) -> None:
    volumes = [{"name": "cat", "configMap": {"name": "cfg"}},
               {"name": "one", "secret": {"secretName": "sec", "items": [
                   {"key": "B", "path": "b.txt"}]}},
               {"name": "gone", "configMap": {"name": "nope", "optional": True}},
               {"name": "scratch", "emptyDir": {}}]
    manifest = {"volumeMounts": [{"name": "cat", "mountPath": "/etc/cat/"},
                                 {"name": "one", "mountPath": "/run/b", "subPath": "b.txt"},
                                 {"name": "gone", "mountPath": "/etc/gone"}]}
    container = container_for("f", manifest, IMAGE, rootfs, SOURCES, volumes=volumes)
    assert container.files == {"/etc/cat/A": "config", "/etc/cat/B": "config",
                               "/run/b": "secret"}
    with pytest.raises(ContainerError, match="names no volume"):
        container_for("f", {"volumeMounts": [{"name": "x", "mountPath": "/x"}]}, IMAGE, rootfs,
                      SOURCES, volumes=volumes)
    with pytest.raises(ContainerError, match="only configMap and secret"):
        container_for("f", {"volumeMounts": [{"name": "scratch", "mountPath": "/x"}]}, IMAGE,
                      rootfs, SOURCES, volumes=volumes)


def test_the_user_comes_from_the_security_context_else_the_image(rootfs: Path) -> None:
    strict = {"securityContext": {"runAsNonRoot": True}}
    container = container_for("f", strict, IMAGE, rootfs, {})
    assert (container.uid, container.gid, container.workdir) == (10001, 10001, "/app")
    named = ImageConfig("saga:staff", IMAGE.env, "/", (), IMAGE.cmd)
    assert (container_for("f", {}, named, rootfs, {}).gid) == 50
    by_name = ImageConfig("saga", IMAGE.env, "/", (), IMAGE.cmd)
    assert container_for("f", {}, by_name, rootfs, {}).gid == 10001  # the passwd group
    override = {"securityContext": {"runAsUser": 7, "runAsGroup": 8}, "workingDir": "/w"}
    assert container_for("f", override, IMAGE, rootfs, {}).uid == 7
    assert container_for("f", override, IMAGE, rootfs, {}).workdir == "/w"


def test_run_as_non_root_is_refused_as_the_kubelet_refuses_it(rootfs: Path) -> None:
    strict = {"securityContext": {"runAsNonRoot": True}}
    root = ImageConfig("", IMAGE.env, "/", (), IMAGE.cmd)
    with pytest.raises(ContainerError, match="would run as root"):
        container_for("f", strict, root, rootfs, {})
    named = ImageConfig("saga", IMAGE.env, "/", (), IMAGE.cmd)
    with pytest.raises(ContainerError, match="not numeric"):
        container_for("f", strict, named, rootfs, {})


def test_the_image_tier_tells_the_functions_the_brokers_flags(rootfs: Path) -> None:
    """saga-config names no broker kind; the image tier adds what `./taskw up` tells its
    functions on that broker, so a function from the image on Tansu works around it too."""
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "saga-config"},
             "data": {"KAFKA_BOOTSTRAP_SERVERS": "cluster:9092", "SAGA_LOG_LEVEL": "INFO"}},
            {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
             "metadata": {"name": "f"}, "spec": {"template": {"spec": {"containers": [
                 {"envFrom": [{"configMapRef": {"name": "saga-config"}}]}]}}}}]
    secret = SecretSpec("s", ("DATABASE_URL", "SAGA_JWT_SECRET"))

    def env(kind: Literal["kafka", "tansu"]) -> Mapping[str, str]:
        [service] = local_workloads(docs, IMAGE, rootfs, secret, database_url="postgresql://x",
                                    kafka_bootstrap="127.0.0.1:1", broker_kind=kind,
                                    jwt_secret="j")
        return service.container.env

    tansu, kafka = env("tansu"), env("kafka")
    assert tansu["KAFKA_BOOTSTRAP_SERVERS"] == kafka["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:1"
    assert (tansu["SAGA_KAFKA_ONE_RECORD_PER_BATCH"],
            tansu["SAGA_BROKER_ENFORCES_RETENTION"]) == ("true", "false")
    assert (kafka["SAGA_KAFKA_ONE_RECORD_PER_BATCH"],
            kafka["SAGA_BROKER_ENFORCES_RETENTION"]) == ("false", "true")
    assert tansu["SAGA_LOG_LEVEL"] == "INFO"


def test_kubernetes_quantities() -> None:
    assert quantity("512Mi") == 512 * 2**20
    assert quantity("1G") == 10**9
    assert quantity("128974848") == 128974848
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity("lots")


def test_the_build_secrets_carry_the_registry_settings_and_the_ca_bundle(
    tmp_path: Path,
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    out = tmp_path / "out"
    out.mkdir()
    secrets = build_secrets(out, {"cert": str(ca), "index-url": "https://mirror.test/simple"})
    conf = secrets["pip.conf"].read_text()
    assert "cert = /run/secrets/pip-cert" in conf and "index-url = https://mirror.test" in conf
    assert secrets["pip-cert"].read_text() == ca.read_text()
    bare = tmp_path / "bare"
    bare.mkdir()
    empty = build_secrets(bare, {})
    assert empty["pip-cert"].read_bytes() == b"" and "cert" not in empty["pip.conf"].read_text()
