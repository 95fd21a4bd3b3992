"""The doc-test markers (tests/doc_blocks.py): every block of README.md's "Quick start" and
"Place an order" and of docs/operations.md says how the docs' journey test runs it, so a
block nobody runs cannot be added; and the parser reads the markers as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doc_blocks import Block, blocks, parse
from tools import REPO_ROOT

README_SECTIONS = ("Quick start", "Place an order")


def _documented() -> list[Block]:
    return (blocks(REPO_ROOT / "README.md", README_SECTIONS)
            + blocks(REPO_ROOT / "docs" / "operations.md"))


def test_every_block_of_the_walked_docs_is_marked() -> None:
    found = _documented()
    assert len(found) >= 10, [b.where for b in found]  # the sections were found at all
    problems = [p for b in found if (p := b.problem())]
    assert not problems, "\n".join(problems)


def test_the_readme_starts_a_stack_on_each_broker_and_places_an_order() -> None:
    readme = blocks(REPO_ROOT / "README.md", README_SECTIONS)
    ups = {b.args: b.lines[0] for b in readme if b.mode == "up"}
    assert set(ups) == {"tansu", "kafka"}
    assert "--broker kafka" in ups["kafka"] and "--broker" not in ups["tansu"]
    pasted = "".join(b.runnable() for b in readme if b.mode == "run")
    assert "POST localhost:8080/accounts" in pasted and "localhost:8080/orders" in pasted


def test_an_unmarked_block_is_a_problem() -> None:
    text = "## Place an order\n\n```sh\ncurl localhost:8080/products\n```\n"
    (block,) = parse(text, "README.md")
    assert block.section == "Place an order" and block.marker is None
    assert "README.md:3: a block with no doc-test marker" in (block.problem() or "")


@pytest.mark.parametrize(("marker", "complaint"), [
    ("<!-- doc-test: skip -->", "needs a reason"),
    ("<!-- doc-test: run 3 (why) -->", "names lines the block does not have"),
    ("<!-- doc-test: run 1 -->", "says why the others are not run"),
    ("<!-- doc-test: up docker -->", "`up` takes one of"),
    ("<!-- doc-test: paste -->", "unknown doc-test mode"),
    ("<!-- doc-test run -->", "unknown doc-test mode"),  # no colon: malformed, not unmarked
])
def test_a_malformed_marker_is_a_problem(marker: str, complaint: str) -> None:
    (block,) = parse(f"{marker}\n```sh\nsaga status\nsaga dlq list\n```\n", "ops.md")
    assert complaint in (block.problem() or ""), block.problem()


def test_run_with_line_numbers_pastes_those_lines_only() -> None:
    text = ("- On a cluster:\n\n"
            "  <!-- doc-test: run 2 (the first needs a cluster) -->\n"
            "  ```sh\n  kubectl get pods\n  saga status --json   # local\n"
            "    indented more\n  ```\n")
    (block,) = parse(text, "ops.md")
    assert block.problem() is None
    assert block.lines == ("kubectl get pods", "saga status --json   # local", "  indented more")
    assert block.runnable() == "saga status --json   # local"


def test_a_fence_of_tildes_and_an_info_string_are_read(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("## A\n<!-- doc-test: skip (output) -->\n~~~json\n{}\n```\n~~~\n## B\n")
    (block,) = blocks(doc, ("A",))
    assert (block.info, block.lines, block.mode) == ("json", ("{}", "```"), "skip")
    assert blocks(doc, ("B",)) == []
