"""buildah and mmdebstrap: found (installed with apt-get where missing and possible), and
buildah run with its errors turned into ImageError naming what failed.

Both run as root here: buildah's chroot isolation and the mounts of rootfs.py need it, and
CI runs as root. Anything else fails at once with the fix in the message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from typing import Any

from tools.infra.apt import apt_install

PACKAGES = ("buildah", "mmdebstrap")  # Debian packages of the same names
# mmdebstrap checks the Debian mirror's signatures with this keyring (on Ubuntu too).
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
TIMEOUT_S = 1800.0


class ImageError(RuntimeError):
    """The image could not be built, inspected or run; the message says what and why."""


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def _missing() -> list[str]:
    missing = [package for package in PACKAGES if _which(package) is None]
    if not os.path.exists(KEYRING):
        missing.append("debian-archive-keyring")
    return missing


@cache
def tool(name: str) -> str:
    """The path of buildah or mmdebstrap; installs what is missing with apt-get first."""
    if os.geteuid() != 0:
        raise ImageError(f"building and running the image needs root ({name} with chroot "
                         "isolation, and mounts): run as root, as CI does")
    missing = _missing()
    if missing:
        why = apt_install(*missing)
        if _missing():
            raise ImageError(f"{', '.join(missing)} could not be installed "
                             f"({why or 'apt-get installed them, yet they are missing'}): "
                             f"install them (apt-get install {' '.join(missing)})")
    found = _which(name)
    if found is None:
        raise ImageError(f"{name} is not installed (apt-get install {name})")
    return found


def buildah(*args: str, timeout: float = TIMEOUT_S, check: bool = True) -> str:
    """Run `buildah ARGS`; its stdout. Raises ImageError with its stderr when it fails."""
    done = subprocess.run([tool("buildah"), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise ImageError(f"buildah {' '.join(args[:3])} failed ({done.returncode}): "
                         f"{done.stderr.strip()[-2000:]}")
    return done.stdout


def image_exists(ref: str) -> bool:
    done = subprocess.run([tool("buildah"), "inspect", "--type", "image", ref],
                          capture_output=True, check=False)
    return done.returncode == 0


def inspect_image(ref: str) -> dict[str, Any]:
    """`buildah inspect --type image`: the OCI config and manifest among others."""
    found: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", ref))
    return found
