"""Installing a Debian package a tool or test needs (Chromium, Redis, buildah, ...) with
apt-get, where that is possible: as root on a machine with apt-get (CI runs so, with no
stdin). Never prompts; says why not instead of raising, so the caller can name the fix."""

from __future__ import annotations

import os
import shutil
import subprocess

APT_TIMEOUT_S = 300


def apt_install(*packages: str) -> str | None:
    """Install Debian packages with apt-get; None on success, else why not."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install them"
    env = dict(os.environ) | {"DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    try:
        if subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT_S,
                          check=False).returncode != 0:
            # A fresh machine may have no package lists yet.
            subprocess.run(["apt-get", "update"], env=env, capture_output=True,
                           timeout=APT_TIMEOUT_S, check=False)
            done = subprocess.run(install, env=env, capture_output=True, text=True,
                                  timeout=APT_TIMEOUT_S, check=False)
            if done.returncode != 0:
                return f"apt-get install failed: {done.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        return f"apt-get did not finish within {APT_TIMEOUT_S} s"
    return None
