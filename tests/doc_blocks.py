"""The fenced blocks of a Markdown document and their doc-test markers: which blocks the
docs' journey test (tests/e2e/test_readme_journey.py) pastes into a shell, and how.

A marker is an HTML comment (invisible once rendered) on the line right above a block's
opening fence, indented like the fence:
  <!-- doc-test: run -->              every line, pasted in order; it must succeed
  <!-- doc-test: run 1,3 (why) -->    only those lines; the why says what the others need
  <!-- doc-test: up tansu|kafka -->   its first line starts the stack on that broker
  <!-- doc-test: skip (why) -->       not run: sample output, a cluster's commands...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BROKERS = ("tansu", "kafka")
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*doc-test:(?P<body>.*?)-->\s*$")
_ANY_MARKER = re.compile(r"<!--\s*doc-test\b")
_RUN_ARGS = re.compile(r"^(?P<lines>\d+(?:,\d+)*)?\s*(?P<why>\(.+\))?$")


@dataclass(frozen=True)
class Block:
    doc: str  # the document's name, for messages
    line: int  # 1-based line of the opening fence
    section: str  # the "## " heading above it ("" before the first)
    info: str  # the fence's info string: "sh", "json", ""
    lines: tuple[str, ...]  # the contents, without the fence's indentation
    marker: str | None  # the text after "doc-test:", None when unmarked

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def mode(self) -> str | None:
        return self.marker.split(maxsplit=1)[0] if self.marker else None

    @property
    def args(self) -> str:
        parts = (self.marker or "").split(maxsplit=1)
        return parts[1] if len(parts) > 1 else ""

    def problem(self) -> str | None:
        """What is wrong with this block's marker, or None."""
        if self.marker is None:
            return (f"{self.where}: a block with no doc-test marker (say how the docs test "
                    "runs it: run, up BROKER, or skip (why); see tests/doc_blocks.py)")
        check = {"skip": self._skip_problem, "up": self._up_problem,
                 "run": self._run_problem}.get(self.mode or "")
        if check is None:
            return f"{self.where}: unknown doc-test mode {self.mode!r} (run, up, skip)"
        return check()

    def _skip_problem(self) -> str | None:
        if re.fullmatch(r"\(.+\)", self.args):
            return None
        return f"{self.where}: `skip` needs a reason in parentheses"

    def _up_problem(self) -> str | None:
        if self.args not in BROKERS:
            return f"{self.where}: `up` takes one of {', '.join(BROKERS)}"
        if not self.lines or not self.lines[0].startswith("./taskw up"):
            return f"{self.where}: an `up` block starts with a `./taskw up` line"
        return None

    def _run_problem(self) -> str | None:
        args = _RUN_ARGS.match(self.args)
        if args is None:
            return f"{self.where}: `run` takes line numbers (1,3) and a reason in parentheses"
        if args["lines"] and not args["why"]:
            return f"{self.where}: `run` with line numbers says why the others are not run"
        if any(not 1 <= n <= len(self.lines) for n in self._picked()):
            return f"{self.where}: `run {args['lines']}` names lines the block does not have"
        return None

    def runnable(self) -> str:
        """The text of a `run` block to paste: every line, or the lines its marker names."""
        if self.mode != "run" or self.problem():
            raise ValueError(f"{self.where} is not a well-formed `run` block")
        picked = self._picked()
        return "\n".join(self.lines[n - 1] for n in picked) if picked else "\n".join(self.lines)

    def _picked(self) -> list[int]:
        args = _RUN_ARGS.match(self.args)
        return [int(n) for n in args["lines"].split(",")] if args and args["lines"] else []


def blocks(path: Path, sections: tuple[str, ...] | None = None) -> list[Block]:
    """The fenced blocks of the document at `path` (of the given "## " sections only)."""
    found = parse(path.read_text(encoding="utf-8"), path.name)
    return [b for b in found if sections is None or b.section in sections]


def parse(text: str, doc: str) -> list[Block]:
    lines = text.splitlines()
    found: list[Block] = []
    section = ""
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            if lines[i].startswith("## "):
                section = lines[i][3:].strip()
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        closing = re.compile(rf"^ {{0,{indent + 3}}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        # Content lines lose the fence's indentation (a block in a list item), no more.
        content = tuple(re.sub(rf"^ {{0,{indent}}}", "", ln) for ln in lines[i + 1:end])
        above = lines[i - 1] if i else ""
        marker = _MARKER.match(above)
        if marker is None and _ANY_MARKER.search(above):
            marker_text: str | None = f"<malformed: {above.strip()}>"
        else:
            marker_text = marker["body"].strip() if marker else None
        found.append(Block(doc, i + 1, section, opening["info"].strip(), content, marker_text))
        i = end + 1
    return found
