"""This machine's pip configuration, handed to the image build as two build secrets, so the
build's `pip install` reaches the package registry the way pip does here (an index mirror,
a proxy, a CA bundle of a TLS-inspecting gateway) and none of it lands in an image layer.

The Dockerfile mounts them only in its install step (`RUN --mount=type=secret`): `pip.conf`
(what `pip config list` shows here: the configuration files and the PIP_* environment) and
`pip-cert` (the file its `cert` names, or an empty one). A build without them (docker
build elsewhere) installs from PyPI with pip's defaults.
"""

from __future__ import annotations

import ast
import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Where the Dockerfile's RUN --mount puts a secret (BuildKit's and buildah's default).
SECRETS_DIR = "/run/secrets"
# The settings that say how to reach the registry. Anything else (find-links to a folder of
# this machine, a target or prefix, require-virtualenv) would mean something else in the
# build, or nothing.
NETWORK_KEYS = ("index-url", "extra-index-url", "trusted-host", "timeout", "default-timeout",
                "retries", "proxy", "cert", "keyring-provider", "disable-pip-version-check")
_LINE = re.compile(r"^(?P<section>[^.]*)\.(?P<key>[^=]+)=(?P<value>.*)$")


def pip_settings(python: str = sys.executable) -> dict[str, str]:
    """The [global] settings pip uses here that say how to reach the registry."""
    done = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True,
                          text=True, check=False, timeout=60)
    settings: dict[str, str] = {}
    environment: dict[str, str] = {}
    for line in done.stdout.splitlines():
        match = _LINE.match(line.strip())
        if match is None or match["key"] not in NETWORK_KEYS:
            continue
        value = str(ast.literal_eval(match["value"]))
        if match["section"] == ":env:":  # PIP_* variables win over every file
            environment[match["key"]] = value
        elif match["section"] in ("global", "install"):
            settings[match["key"]] = value
    return settings | environment


def build_secrets(folder: Path, settings: dict[str, str]) -> dict[str, Path]:
    """Write the two secrets into `folder`; {secret id: file} for `buildah bud --secret`."""
    settings = dict(settings)
    cert = folder / "pip-cert"
    given = settings.pop("cert", None)
    if given is not None and Path(given).is_file():
        shutil.copyfile(given, cert)
        settings["cert"] = f"{SECRETS_DIR}/pip-cert"
    else:
        cert.write_bytes(b"")
    config = configparser.ConfigParser(interpolation=None)
    config["global"] = settings
    conf = folder / "pip.conf"
    with conf.open("w", encoding="utf-8") as handle:
        config.write(handle)
    return {"pip.conf": conf, "pip-cert": cert}
