"""Every module of tools/ opens with a docstring that states its contract in a few lines
(docs/architecture.md, "Layout"): at most MAX_LINES. Measurements and history belong in
docs/ and the commit log."""

from __future__ import annotations

import ast

from tools import REPO_ROOT

MAX_LINES = 8


def test_every_module_of_the_tools_has_a_short_docstring() -> None:
    missing, long = [], {}
    for path in sorted((REPO_ROOT / "tools").rglob("*.py")):
        name = str(path.relative_to(REPO_ROOT))
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
        if docstring is None:
            missing.append(name)
        elif (lines := len(docstring.strip().splitlines())) > MAX_LINES:
            long[name] = lines
    assert missing == [], f"modules without a docstring: {missing}"
    assert long == {}, f"docstrings over {MAX_LINES} lines (move the rest to docs/): {long}"
