"""A process's total instructions (Ir) under `valgrind --tool=callgrind`, read from the
callgrind output file's `summary:` (or `totals:`) line."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

INSTALL_HINT = "install valgrind (Debian/Ubuntu: apt-get install valgrind)"


class CallgrindError(RuntimeError):
    """valgrind is missing, the measured process failed, or its output had no total."""


def require_valgrind() -> str:
    """The valgrind executable, or CallgrindError naming how to install it."""
    found = shutil.which("valgrind")
    if found is None:
        raise CallgrindError(f"valgrind is not on PATH; {INSTALL_HINT}")
    return found


def parse_total_ir(text: str) -> int:
    """The total Ir of one callgrind output file's text."""
    for line in text.splitlines():
        if line.startswith(("summary:", "totals:")):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1])
            break
    raise CallgrindError("no 'summary:' or 'totals:' line with an instruction count")


def total_instructions(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str],
                       timeout_s: float = 900.0) -> int:
    """Run `argv` under callgrind to its end (stdout discarded) and return its total Ir."""
    valgrind = require_valgrind()
    with tempfile.TemporaryDirectory(prefix="saga-callgrind-") as scratch:
        out = Path(scratch) / "callgrind.out"
        done = subprocess.run(
            [valgrind, "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={out}",
             *argv], cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, timeout=timeout_s, check=False)
        if done.returncode != 0 or not out.exists():
            tail = "\n".join(done.stderr.splitlines()[-15:])
            raise CallgrindError(f"{' '.join(argv)} exited {done.returncode} under "
                                 f"callgrind:\n{tail}")
        return parse_total_ir(out.read_text(encoding="utf-8", errors="replace"))
