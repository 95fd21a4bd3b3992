"""The facts of a built image: its size and layers (from buildah's manifest: what each layer
unpacks to), and, asked of the image itself, its Python version and the distributions
installed in it, with the user, working directory and command it runs."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tools.image.buildah import ImageError, inspect_image
from tools.image.container import container_for
from tools.image.process import run_container
from tools.image.rootfs import MountedImage

_ASK = ("import importlib.metadata as m, json, sys; print(json.dumps({'python': "
        "sys.version.split()[0], 'packages': sorted((d.metadata['Name'], d.version) "
        "for d in m.distributions())}))")


@dataclass(frozen=True)
class ImageFacts:
    ref: str
    image_id: str
    layers: tuple[int, ...]  # bytes, base first
    python: str
    packages: tuple[tuple[str, str], ...]
    user: str
    workdir: str
    command: tuple[str, ...]

    @property
    def size(self) -> int:
        return sum(self.layers)

    def report(self) -> str:
        mb = 1e6
        lines = [
            f"image     {self.ref} ({self.image_id[:12]})",
            f"size      {self.size / mb:.0f} MB unpacked, in {len(self.layers)} layers: "
            + ", ".join(f"{size / mb:.1f}" for size in self.layers) + " MB",
            f"python    {self.python}",
            f"runs      {' '.join(self.command)} as user {self.user} in {self.workdir}",
            f"packages  {len(self.packages)}: "
            + ", ".join(f"{name} {version}" for name, version in self.packages),
        ]
        return "\n".join(lines)


def collect(ref: str) -> ImageFacts:
    inspected = inspect_image(ref)
    layers = tuple(int(layer["size"]) for layer in json.loads(inspected["Manifest"])["layers"])
    with MountedImage(ref) as image:
        container = container_for("facts", {"command": ["python", "-c", _ASK]}, image.config,
                                  image.path, {})
        done = run_container(container, image.path, timeout=60)
        if done.returncode != 0:
            raise ImageError(f"asking the image for its Python failed: {done.stdout[-1000:]}")
        asked = json.loads(done.stdout.strip().splitlines()[-1])
        config = image.config
    return ImageFacts(ref, image.image_id, layers, asked["python"],
                      tuple((str(n), str(v)) for n, v in asked["packages"]),
                      config.user, config.workdir, config.entrypoint + config.cmd)
