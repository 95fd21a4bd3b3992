"""What the built image holds and how it runs a process: a numeric non-root user, the
deployed code only (no tools/, no tests/), no build tools, a read-only root filesystem for
what it runs, and facts (size, layers, Python) within the budget docs/deploy.md states."""

from __future__ import annotations

import json

from tests.image.conftest import FIGURES
from tools.image.container import container_for
from tools.image.facts import collect
from tools.image.process import run_container
from tools.image.rootfs import MountedImage

# docs/deploy.md, "The image": what it weighs today, with room for a few dependencies.
MAX_SIZE_MB = 400
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "make", "ld", "as")
ASK = """
import importlib.util, json, os, sys, sysconfig
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd(),
    "found": {m: importlib.util.find_spec(m) is not None
              for m in ("tools", "tests", "pip", "setuptools", "common", "functions")},
    "python_h": os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")),
}))
"""


def _ask(mounted: MountedImage, code: str) -> tuple[int, str]:
    """Run `python -c code` in the image, as the image runs its command."""
    container = container_for("ask", {"args": ["python", "-c", code]}, mounted.config,
                              mounted.path, {})
    done = run_container(container, mounted.path, timeout=60)
    return done.returncode, done.stdout


def test_a_process_runs_as_the_numeric_non_root_user_in_app(mounted: MountedImage) -> None:
    status, out = _ask(mounted, ASK)
    assert status == 0, out
    seen = json.loads(out.strip().splitlines()[-1])
    uid, _, gid = mounted.config.user.partition(":")
    assert uid.isdigit() and int(uid) != 0, mounted.config.user
    assert (seen["uid"], seen["gid"], seen["groups"]) == (int(uid), int(gid), [])
    assert seen["cwd"] == mounted.config.workdir
    assert seen["found"]["common"] and seen["found"]["functions"]


def test_the_image_holds_the_deployed_code_and_nothing_to_build_with(
    mounted: MountedImage,
) -> None:
    status, out = _ask(mounted, ASK)
    assert status == 0, out
    seen = json.loads(out.strip().splitlines()[-1])
    # Neither the tools nor the tests, nor an installer, are importable by what runs.
    assert not any(seen["found"][m] for m in ("tools", "tests", "pip", "setuptools")), seen
    assert not seen["python_h"], "Python's C headers are in the image"
    workdir = mounted.path / mounted.config.workdir.lstrip("/")
    assert sorted(p.name for p in workdir.iterdir()) == [
        "alembic.ini", "common", "functions", "migrations"]
    path = mounted.config.env["PATH"].split(":")
    compilers = [f"{folder}/{name}" for folder in path for name in COMPILERS
                 if (mounted.path / folder.lstrip("/") / name).exists()]
    assert compilers == []


def test_nothing_it_runs_can_write_its_root_filesystem(mounted: MountedImage) -> None:
    """The processes of this tier see the image read-only, so any write a function made
    would fail the function's own tests: this shows the check is real."""
    code = ("import os\nfor path in ('/tmp/x', '/app/x', '/dev/shm/x'):\n"
            "    try:\n        open(path, 'w').close(); print(path, 'written')\n"
            "    except OSError as exc:\n        print(path, exc.errno)\n")
    status, out = _ask(mounted, code)
    assert status == 0, out
    assert out.split() == ["/tmp/x", "30", "/app/x", "30", "/dev/shm/x", "written"]  # EROFS


def test_the_facts_are_within_the_budget(image: str) -> None:
    facts = collect(image)
    FIGURES["image"] = (f"{facts.size / 1e6:.0f} MB unpacked in {len(facts.layers)} layers "
                        f"({', '.join(f'{n / 1e6:.1f}' for n in facts.layers)} MB), Python "
                        f"{facts.python}, {len(facts.packages)} distributions")
    assert facts.size < MAX_SIZE_MB * 1e6, facts.report()
    assert facts.python.startswith("3.") and int(facts.python.split(".")[1]) >= 11
    names = {name.lower() for name, _ in facts.packages}
    assert {"functions-framework", "psycopg-binary", "confluent-kafka", "alembic"} <= names
