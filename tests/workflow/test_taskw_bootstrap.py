"""./taskw's first run as a new user sees it, with the real pip and the project's real build
backend: one line per stage with its duration and no pages of warnings; and a real pip
error still shows, in full.

On a probe project (a copy of ./taskw, the project's [build-system] and license, its
package layout, no dependencies and a stand-in for tools/task_launcher.py), so that it
takes seconds, not the minutes of the real dependencies. Needs PyPI (pip, setuptools).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tools import REPO_ROOT

TIMEOUT_S = 300
BASE_PYTHON: str = getattr(sys, "_base_executable", sys.executable)  # not this venv's
STAGE = re.compile(r"^taskw: (.+) \.\.\. (\d+ s|failed after \d+ s \(exit code \d+\):)$")


def probe_project(root: Path, dependencies: list[str]) -> None:
    real = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    find = real["tool"]["setuptools"]["packages"]["find"]["include"]
    (root / "pyproject.toml").write_text(f"""\
[build-system]
requires = {json.dumps(real["build-system"]["requires"])}
build-backend = {json.dumps(real["build-system"]["build-backend"])}

[project]
name = "taskw-probe"
version = "0.1.0"
requires-python = ">=3.11"
license = {json.dumps(real["project"]["license"])}

[project.optional-dependencies]
local = {json.dumps(dependencies)}
dev = []

[tool.setuptools.packages.find]
include = {json.dumps(find)}
""")
    for package in ("common", "functions", "tools"):
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").write_text("")
    (root / "tools" / "task_launcher.py").write_text(
        "import sys\nprint('launched', *sys.argv[2:])\n")
    shutil.copy2(REPO_ROOT / "taskw", root / "taskw")


def taskw(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PIP_"))}
    return subprocess.run([str(root / "taskw"), *args], cwd=root, env=env | {
        "TASKW_PYTHON": BASE_PYTHON}, capture_output=True, text=True,
        timeout=TIMEOUT_S, check=False)


def test_the_first_run_says_each_stage_and_nothing_else_but_a_pip_error(
        tmp_path: Path) -> None:
    probe_project(tmp_path, [])
    first = taskw(tmp_path, "--list")
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stderr.splitlines()
    stages = [STAGE.match(line) for line in lines[:-1]]
    assert all(stages), first.stderr  # nothing but the stage lines: no warning at all
    assert [m.group(1) for m in stages if m] == [
        f"creating .venv with {_python_version()}", "upgrading pip",
        "installing the project and its tools into .venv (the first time takes a few "
        "minutes)"]
    assert re.fullmatch(r"taskw: \.venv ready in \d+ s", lines[-1]), first.stderr
    assert first.stdout.startswith("launched ") and "--list" in first.stdout

    again = taskw(tmp_path, "--list")  # up to date: straight to Task
    assert (again.returncode, again.stderr) == (0, ""), again.stderr

    probe_project(tmp_path, ["taskw-probe-missing-dependency==0.0.1"])
    failed = taskw(tmp_path, "--list")
    assert failed.returncode != 0 and "launched" not in failed.stdout
    assert re.search(r"^taskw: installing the project and its tools into \.venv "
                     r"\(pyproject\.toml changed\) \.\.\. failed after \d+ s \(exit code \d+\):$",
                     failed.stderr, re.MULTILINE), failed.stderr
    assert "ERROR:" in failed.stderr and "taskw-probe-missing-dependency" in failed.stderr


def _python_version() -> str:
    return subprocess.run([BASE_PYTHON, "-V"], capture_output=True, text=True,
                          check=True).stdout.strip()
