"""The measured process: `python -m tools.bench.micro.child WORKLOAD N TOTAL` runs the
workload ("module:function" under workloads/) with N operations after its warm-up; it
prepares for TOTAL, the same in every run of a case, so only N differs between runs."""

from __future__ import annotations

import importlib
import sys


def main(argv: list[str]) -> int:
    workload, n, total = argv[0], int(argv[1]), int(argv[2])
    module, function = workload.split(":")
    run = getattr(importlib.import_module(f"tools.bench.micro.workloads.{module}"), function)
    run(n, total)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
