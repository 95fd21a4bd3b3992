"""One micro bench: each chosen case's child under callgrind with 0 and with N operations,
and the instructions per operation between them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import REPO_ROOT
from tools.bench.commit import head_commit
from tools.bench.micro.callgrind import total_instructions
from tools.bench.micro.cases import Case


@dataclass(frozen=True)
class MicroSpec:
    cases: Sequence[Case]
    iterations: int | None = None  # None: each case's own default
    common_from: Path | None = None  # a directory whose common/ is measured instead


def per_operation(ir_zero: int, ir_n: int, n: int) -> float:
    """Instructions per operation: what N operations added to the run with none, over N."""
    if n <= 0:
        raise ValueError(f"N must be at least 1, not {n}")
    return (ir_n - ir_zero) / n


def child_env(common_from: Path | None) -> dict[str, str]:
    """The child's environment: `common_from` (if any) before the project on its path (the
    child runs with -P, so its working directory is not on it), a fixed hash seed."""
    path = [str(common_from)] if common_from is not None else []
    return dict(os.environ, PYTHONHASHSEED="0",
                PYTHONPATH=os.pathsep.join([*path, str(REPO_ROOT)]))


def measured_common(env: dict[str, str]) -> str:
    """Where the child's `common` package comes from."""
    done = subprocess.run([sys.executable, "-P", "-c", "import common; print(common.__file__)"],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                          timeout=60)
    return str(Path(done.stdout.strip()).parent)


def measure(case: Case, n: int, env: dict[str, str],
            ran: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """The case's child under callgrind with 0 and with n operations (`ran` after each)."""
    argv = [sys.executable, "-P", "-m", "tools.bench.micro.child", case.workload]
    totals = []
    for count in (0, n):
        totals.append(total_instructions([*argv, str(count), str(n)], cwd=REPO_ROOT, env=env))
        ran()
    ir_zero, ir_n = totals
    return {"case": case.name, "what": case.what, "n": n, "ir_zero": ir_zero, "ir_n": ir_n,
            "per_operation": round(per_operation(ir_zero, ir_n, n), 1)}


def run_micro(spec: MicroSpec, ran: Callable[[], None] = lambda: None) -> dict[str, Any]:
    env = child_env(spec.common_from)
    return {"commit": head_commit(), "common": measured_common(env),
            "python": sys.version.split()[0],
            "cases": [measure(case, spec.iterations or case.iterations, env, ran)
                      for case in spec.cases]}
