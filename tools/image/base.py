"""The local base image: Debian's own python3 in a root filesystem mmdebstrap makes from the
Debian mirror, for machines that cannot pull the official python image (the Dockerfile's
default BASE). Bookworm's python3 is 3.11, the same minor version as that default, so the
wheels the build installs are the ones a production build installs.

The root filesystem is kept as a tarball in the user's cache (~/.cache/order-saga/
image-base/<recipe key>.tar) and imported into buildah's storage as
localhost/order-saga/base:<recipe key>: both are made again only when RECIPE changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.image.buildah import KEYRING, ImageError, buildah, image_exists, tool
from tools.infra.kafka_dist import cache_dir

logger = logging.getLogger(__name__)

MIRROR = "http://deb.debian.org"


@dataclass(frozen=True)
class Recipe:
    suite: str
    sources: tuple[str, ...]
    packages: tuple[str, ...]
    dpkg_options: tuple[str, ...]
    customize: tuple[str, ...]
    env: tuple[str, ...]

    @property
    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def tag(self) -> str:
        return f"localhost/order-saga/base:{self.key}"


# What python:3.11-slim-bookworm holds, from Debian: minbase (Debian's essential and
# required packages, apt), python3 with venv, CA certificates, netbase and time zones;
# documentation, manual pages and translations left out as in Debian's slim images.
RECIPE = Recipe(
    suite="bookworm",
    sources=tuple(f"deb [signed-by={KEYRING}] {MIRROR}/{path} main" for path in (
        "debian bookworm", "debian bookworm-updates", "debian-security bookworm-security")),
    packages=("python3", "python3-venv", "ca-certificates", "netbase", "tzdata"),
    dpkg_options=("path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
                  "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
                  "path-exclude=/usr/share/locale/*",
                  "path-include=/usr/share/locale/locale.alias"),
    # mmdebstrap copies the host's resolv.conf and hostname in for apt; a container
    # runtime provides its own, and the host's have no business in an image.
    customize=(': > "$1/etc/hostname"; : > "$1/etc/resolv.conf"',),
    env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"),
)


def ensure_base(recipe: Recipe = RECIPE) -> str:
    """The base image's reference in buildah's storage, made first if missing."""
    if image_exists(recipe.tag):
        return recipe.tag
    folder = cache_dir() / "image-base"
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        if image_exists(recipe.tag):  # another process made it while we waited
            return recipe.tag
        tarball = folder / f"{recipe.key}.tar"
        if not tarball.exists():
            _debootstrap(recipe, tarball)
        _import(recipe, tarball)
    return recipe.tag


def _debootstrap(recipe: Recipe, tarball: Path) -> None:
    logger.warning("making the base image's root filesystem with mmdebstrap (%s, about a "
                   "minute; cached in %s)", recipe.suite, tarball.parent)
    partial = tarball.with_suffix(".partial.tar")
    command = [tool("mmdebstrap"), "--variant=minbase", f"--include={','.join(recipe.packages)}",
               *(f"--dpkgopt={option}" for option in recipe.dpkg_options),
               *(f"--customize-hook={hook}" for hook in recipe.customize),
               recipe.suite, str(partial), *recipe.sources]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ImageError(f"mmdebstrap failed ({done.returncode}; it needs {MIRROR}): "
                         f"{done.stderr.strip()[-2000:]}")
    partial.rename(tarball)


def _import(recipe: Recipe, tarball: Path) -> None:
    container = buildah("from", "scratch").strip()
    try:
        buildah("add", "--quiet", container, str(tarball), "/")
        env_flags = [flag for pair in recipe.env for flag in ("--env", pair)]
        buildah("config", *env_flags, "--cmd", '["python3"]', container)
        buildah("commit", "--quiet", container, recipe.tag)
    finally:
        buildah("rm", container, check=False)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process at a time makes the base (two test sessions may start together)."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

