"""The import rule of the layout (docs/architecture.md, "Layout"): the arrows go
tools -> functions -> common and never back.

- `common` (the deployed library) imports neither `functions` nor `tools`;
- `functions` import only `common` (and each other's packages), never `tools`;
- `tools` may import both.

Every import statement counts, also one inside a function body (a lazy import is still a
dependency the image would need).
"""

from __future__ import annotations

import ast

import pytest

from tools import REPO_ROOT

OURS = ("common", "functions", "tools", "tests")
# What each of our packages may import of ours.
ALLOWED = {
    "common": {"common"},
    "functions": {"common", "functions"},
    "tools": {"common", "functions", "tools"},
}


def imported_packages(source: str) -> set[str]:
    """The top-level packages of ours that `source` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & set(OURS)
    return found


def violations(package: str, source: str) -> set[str]:
    return imported_packages(source) - ALLOWED[package]


def test_the_rule_catches_a_function_importing_the_tools() -> None:
    lazy = "def handler():\n    from tools.ops.status import collect\n    return collect\n"
    assert violations("functions", lazy) == {"tools"}
    assert violations("functions", "import tools.settings\n") == {"tools"}
    assert violations("common", "from functions.api import cache\n") == {"functions"}
    assert violations("common", "from common import tables\nimport json\n") == set()
    assert violations("tools", "from functions.timeouts.sweep import sweep\n") == set()


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_every_module_keeps_the_rule(package: str) -> None:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, f"no modules under {package}/"
    broken = {str(f.relative_to(REPO_ROOT)): sorted(bad) for f in files
              if (bad := violations(package, f.read_text(encoding="utf-8")))}
    assert broken == {}, f"imports against the rule tools -> functions -> common: {broken}"
