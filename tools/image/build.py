"""Build the Dockerfile with buildah on the local base (base.py): chroot isolation and the
host's network (what works without a container runtime's cgroups), the machine's pip
configuration as build secrets (pip_config.py), and buildah's layer cache, so a rebuild
redoes only the steps after the first changed one.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from tools.image.base import ensure_base
from tools.image.buildah import TIMEOUT_S, ImageError, tool
from tools.image.pip_config import build_secrets, pip_settings

DEFAULT_TAG = "localhost/order-saga/functions:local"


def build(root: Path, tag: str = DEFAULT_TAG, *, output: IO[str] | None = None) -> str:
    """Build `root`/Dockerfile as `tag`; the image id. The build's output goes to `output`
    when given, else is kept for the error a failure raises (its last lines)."""
    base = ensure_base()
    with tempfile.TemporaryDirectory(prefix="saga-image-build-") as scratch:
        folder = Path(scratch)
        secrets = build_secrets(folder, pip_settings())
        iidfile = folder / "iid"
        log = folder / "build.log"
        command = [tool("buildah"), "bud", "--isolation", "chroot", "--network", "host",
                   "--layers", "--pull=never", "--build-arg", f"BASE={base}",
                   *(f"--secret=id={key},src={path}" for key, path in secrets.items()),
                   "--iidfile", str(iidfile), "--tag", tag,
                   "--file", str(root / "Dockerfile"), str(root)]
        began = time.monotonic()
        with log.open("w+", encoding="utf-8") as captured:
            done = subprocess.run(command, stdout=output or captured, stderr=subprocess.STDOUT,
                                  text=True, check=False, timeout=TIMEOUT_S)
            if done.returncode != 0:
                captured.seek(0)
                tail = "\n".join(captured.read().splitlines()[-40:])
                raise ImageError(f"the image build failed ({done.returncode}) after "
                                 f"{time.monotonic() - began:.0f} s\n{tail}")
        return iidfile.read_text(encoding="utf-8").strip().removeprefix("sha256:")
