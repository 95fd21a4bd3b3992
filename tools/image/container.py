"""What a Kubernetes node runs for one container of a manifest in this image, by Kubernetes'
rules: `command` replaces the image's ENTRYPOINT and `args` its CMD; the environment is the
image's, then each envFrom source, then `env` (later wins), with $(VAR) references
expanded; the user is securityContext.runAsUser/runAsGroup, else the image's USER
(numeric, or a name looked up in the image's /etc/passwd), refused when runAsNonRoot
cannot be verified, as the kubelet refuses it; the working directory is workingDir, else
the image's WORKDIR; configMap and secret volumes are the files their volumeMounts put
in the container (read-only, as the kubelet projects them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.image.buildah import ImageError

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ContainerError(ImageError):
    """The manifest's container cannot run in this image (as the kubelet would refuse it)."""


@dataclass(frozen=True)
class ImageConfig:
    """The parts of the image's config a container starts from."""

    user: str
    env: Mapping[str, str]
    workdir: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]

    @classmethod
    def of(cls, inspected: Mapping[str, Any]) -> ImageConfig:
        """From `buildah inspect --type image` (tools.image.buildah.inspect_image)."""
        config = inspected["OCIv1"].get("config", {})
        env = dict(pair.split("=", 1) for pair in config.get("Env") or [])
        return cls(config.get("User") or "", env, config.get("WorkingDir") or "/",
                   tuple(config.get("Entrypoint") or ()), tuple(config.get("Cmd") or ()))


@dataclass(frozen=True)
class Container:
    """One process to start from the image."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(hash=False)
    workdir: str
    uid: int
    gid: int
    # What the pod's volumes put in the container: absolute path -> content.
    files: Mapping[str, str] = field(default_factory=dict, hash=False)


def container_for(name: str, manifest: Mapping[str, Any], image: ImageConfig, rootfs: Path,
                  sources: Mapping[str, Mapping[str, str]], *,
                  pod_security: Mapping[str, Any] | None = None,
                  runtime_env: Mapping[str, str] | None = None,
                  volumes: Sequence[Mapping[str, Any]] = ()) -> Container:
    """The container `manifest` (a pod template's container) describes. `sources` holds the
    data of the ConfigMaps and Secrets envFrom may name, keyed "configMap/NAME" and
    "secret/NAME" (envFrom and volumes may name them); `runtime_env` is what the platform
    adds (Knative: PORT, K_SERVICE); `volumes` are the pod's."""
    where = f"container {manifest.get('name') or name!r}"
    env = dict(image.env)
    for source in manifest.get("envFrom") or []:
        env |= _env_from(source, sources, where)
    for entry in manifest.get("env") or []:
        if "valueFrom" in entry:
            raise ContainerError(f"{where}: env {entry['name']}: valueFrom is not supported "
                                 "here; give a value")
        env[entry["name"]] = expand(str(entry.get("value", "")), env)
    env |= dict(runtime_env or {})  # reserved: the platform's, whatever the manifest says
    command = [expand(a, env) for a in manifest.get("command") or []]
    args = [expand(a, env) for a in manifest.get("args") or []]
    argv = (command or list(image.entrypoint)) + (
        args if args or command else list(image.cmd))
    if not argv:
        raise ContainerError(f"{where}: neither the manifest nor the image says what to run")
    security = dict(pod_security or {}) | dict(manifest.get("securityContext") or {})
    uid, gid = _user(image.user, security, rootfs, where)
    files: dict[str, str] = {}
    for mount in manifest.get("volumeMounts") or []:
        volume = next((v for v in volumes if v.get("name") == mount.get("name")), None)
        if volume is None:
            raise ContainerError(f"{where}: volumeMount {mount.get('name')!r} names no volume "
                                 "of the pod")
        files |= _projected(volume, mount, sources, where)
    return Container(name, tuple(argv), env, manifest.get("workingDir") or image.workdir,
                     uid, gid, files)


def _projected(volume: Mapping[str, Any], mount: Mapping[str, Any],
               sources: Mapping[str, Mapping[str, str]], where: str) -> dict[str, str]:
    """The files a configMap or secret volume puts under its mountPath: one per key (or
    per `items` entry), or the one key a subPath names at the mountPath itself."""
    for kind, name_key in (("configMap", "name"), ("secret", "secretName")):
        source = volume.get(kind)
        if source is None:
            continue
        data = sources.get(f"{kind}/{source.get(name_key)}")
        if data is None:
            if source.get("optional"):
                return {}
            raise ContainerError(f"{where}: volume {volume['name']!r} names {kind} "
                                 f"{source.get(name_key)!r}, which does not exist")
        paths = {item["key"]: item["path"] for item in source.get("items") or []} or {
            key: key for key in data}
        root = str(mount["mountPath"]).rstrip("/")
        if mount.get("subPath"):
            key = next((k for k, path in paths.items() if path == mount["subPath"]), None)
            return {} if key is None else {root: str(data[key])}
        return {f"{root}/{path}": str(data[key]) for key, path in paths.items()}
    raise ContainerError(f"{where}: volume {volume.get('name')!r}: only configMap and secret "
                         "volumes can be run here")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: a defined variable is replaced, an undefined one kept
    as written, and $$ stands for a literal $."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _REFERENCE.sub(one, text)


def _env_from(source: Mapping[str, Any], sources: Mapping[str, Mapping[str, str]],
              where: str) -> dict[str, str]:
    for kind, ref_key in (("configMap", "configMapRef"), ("secret", "secretRef")):
        ref = source.get(ref_key)
        if ref is None:
            continue
        data = sources.get(f"{kind}/{ref['name']}")
        if data is None:
            if ref.get("optional"):
                return {}
            raise ContainerError(f"{where}: envFrom names {kind} {ref['name']!r}, which "
                                 f"does not exist (known: {', '.join(sorted(sources))})")
        prefix = str(source.get("prefix", ""))
        return {prefix + key: str(value) for key, value in data.items()}
    raise ContainerError(f"{where}: envFrom {dict(source)!r} names no configMapRef or secretRef")


def _user(image_user: str, security: Mapping[str, Any], rootfs: Path,
          where: str) -> tuple[int, int]:
    user, _, group = image_user.partition(":")
    uid = security.get("runAsUser")
    if uid is None:
        if security.get("runAsNonRoot") and not (user or "0").isdigit():
            raise ContainerError(f"{where}: runAsNonRoot, and the image's user {user!r} is not "
                                 "numeric, so the kubelet cannot verify it (use a numeric "
                                 "USER in the Dockerfile)")
        uid = _lookup(rootfs / "etc" / "passwd", user or "0", where, field=2)
    gid = security.get("runAsGroup")
    if gid is None:
        gid = (_lookup(rootfs / "etc" / "group", group, where, field=2) if group
               else _primary_group(rootfs, int(uid)))
    if security.get("runAsNonRoot") and int(uid) == 0:
        raise ContainerError(f"{where}: runAsNonRoot, and the container would run as root")
    return int(uid), int(gid)


def _lookup(database: Path, name: str, where: str, *, field: int) -> int:
    if name.isdigit():
        return int(name)
    for line in _lines(database):
        parts = line.split(":")
        if parts[0] == name and len(parts) > field:
            return int(parts[field])
    raise ContainerError(f"{where}: {name!r} is not in the image's {database.name}")


def _primary_group(rootfs: Path, uid: int) -> int:
    """The user's group in the image's /etc/passwd; 0 for a uid it does not list."""
    for line in _lines(rootfs / "etc" / "passwd"):
        parts = line.split(":")
        if len(parts) > 3 and parts[2] == str(uid):
            return int(parts[3])
    return 0


def _lines(path: Path) -> Sequence[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
