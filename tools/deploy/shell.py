"""Printing a plan as a POSIX shell script (`task deploy:dry`) and running it (`task
deploy`). The printed script does what the run does, so an operator can review it, keep
it, or run it by hand; the only difference is the Secret, which the run pipes to kubectl
and the script makes from the same `$VARIABLES`.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from typing import TextIO

from tools.deploy.manifests import DeployError
from tools.deploy.plan import Command, Either, Phase

HEREDOC = "SAGA_MANIFESTS"
WIDTH = 100


def script(phases: Sequence[Phase], header: Sequence[str] = ()) -> str:
    lines = ["#!/bin/sh", *(f"# {line}" for line in header), "set -eu"]
    for number, phase in enumerate(phases, 1):
        lines += ["", f"# --- {number}. {phase.title}"]
        for step in phase.steps:
            lines += _render(step)
    return "\n".join(lines) + "\n"


def _render(step: Command | Either) -> list[str]:
    if isinstance(step, Either):
        return [f"if {_line(step.probe)} >/dev/null 2>&1; then",
                *(f"  {line}" for line in _render(step.then)),
                "else",
                *(f"  {line}" for line in _render(step.otherwise)),
                "fi"]
    lines = [f"# {step.note}"] if step.note else []
    if step.shown is not None:
        return [*lines, step.shown]
    if step.stdin is None:
        return [*lines, _line(step)]
    if any(line == HEREDOC for line in step.stdin.splitlines()):
        raise DeployError(f"a manifest contains the line {HEREDOC}")
    return [*lines, f"{_line(step)} <<'{HEREDOC}'", *step.stdin.rstrip("\n").splitlines(),
            HEREDOC]


def _line(command: Command) -> str:
    """The command, quoted for sh; a long one with one flag (and its value) per line."""
    line = shlex.join(command.argv)
    if len(line) <= WIDTH:
        return line
    parts: list[list[str]] = [[]]
    for arg in command.argv:
        if arg.startswith("--") and parts[-1]:
            parts.append([])
        parts[-1].append(shlex.quote(arg))
    return " \\\n    ".join(" ".join(p) for p in parts)


def run(phases: Sequence[Phase], echo: TextIO = sys.stderr) -> int:
    """Run every step in order; stop at the first failure and return its exit code."""
    for number, phase in enumerate(phases, 1):
        print(f"--- {number}. {phase.title}", file=echo, flush=True)
        for step in phase.steps:
            code = _run(step, echo)
            if code != 0:
                print(f"deploy stopped: exit code {code}", file=echo)
                return code
    return 0


def _run(step: Command | Either, echo: TextIO) -> int:
    if isinstance(step, Either):
        found = _spawn(step.probe, quiet=True)
        return _run(step.then if found == 0 else step.otherwise, echo)
    shown = step.shown if step.shown is not None else _line(step)
    suffix = f"   # {step.note}" if step.note and step.shown is None else ""
    print(f"+ {shown}{suffix}", file=echo, flush=True)
    return _spawn(step)


def _spawn(command: Command, *, quiet: bool = False) -> int:
    output = subprocess.DEVNULL if quiet else None
    try:
        done = subprocess.run(command.argv, input=command.stdin, text=True, check=False,
                              stdout=output, stderr=output)
    except FileNotFoundError:
        raise DeployError(f"{command.argv[0]!r} not found on PATH (docs/deploy.md lists the "
                          "tools)") from None
    return done.returncode
