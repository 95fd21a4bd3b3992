"""A process's total instructions (Ir) under `valgrind --tool=callgrind`, run to its end."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tools.bench.callgrind import CallgrindError, read_total_ir, require_valgrind


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
        return read_total_ir(out)
