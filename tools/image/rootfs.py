"""The image's root filesystem, mounted by buildah for processes to run from (process.py
shows it to them read-only, under a layer of what a container runtime adds).

Each use makes a working container named after this process and removes it on exit; one
left by a process that died (SIGKILL) is removed by the next use.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

from tools.image.buildah import buildah, inspect_image
from tools.image.container import ImageConfig

PREFIX = "order-saga-rootfs-"


class MountedImage:
    def __init__(self, ref: str) -> None:
        self.ref = ref
        inspected = inspect_image(ref)
        self.image_id = str(inspected["FromImageID"])
        self.config = ImageConfig.of(inspected)
        self._name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            raise RuntimeError(f"{self.ref} is not mounted: use `with MountedImage(...)`")
        return self._path

    def __enter__(self) -> Self:
        remove_stale()
        buildah("from", "--pull-never", "--quiet", "--name", self._name, self.ref)
        try:
            self._path = Path(buildah("mount", self._name).strip())
        except BaseException:
            buildah("rm", self._name, check=False)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._path = None
        buildah("rm", self._name, check=False)  # unmounts it too


def remove_stale() -> None:
    """Remove the working containers of processes that no longer run."""
    names = buildah("containers", "--format", "{{.ContainerName}}", check=False).split()
    for name in names:
        pid = name.removeprefix(PREFIX).split("-")[0]
        if name.startswith(PREFIX) and pid.isdigit() and not _alive(int(pid)):
            buildah("rm", name, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
