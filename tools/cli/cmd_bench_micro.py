"""saga bench-micro: instructions per operation of the hot paths' pieces, under callgrind."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tools.bench.micro.cases import BY_NAME, CASES
from tools.progress import add_quiet_option


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench-micro", help="instructions per operation under callgrind (needs valgrind): "
        "a log_event line, a delivery through the event endpoint, verify_token of a "
        "repeated and of a new token; writes bench/results/micro-<time>.json")
    parser.add_argument("--cases", nargs="+", choices=list(BY_NAME), metavar="CASE",
                        help=f"measure only these (default all: {', '.join(BY_NAME)})")
    parser.add_argument("--iterations", type=_positive, default=None, metavar="N",
                        help="operations per measured run (default: each case's own, "
                        + ", ".join(f"{c.name} {c.iterations}" for c in CASES) + ")")
    parser.add_argument("--common-from", type=Path, default=None, metavar="DIR",
                        help="measure the common/ package in DIR instead of this tree's, "
                        "e.g. an older commit's: git archive COMMIT common | tar -x -C DIR")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="default: bench/results in the project")
    parser.add_argument("--json", action="store_true", help="print the JSON, not the table")
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, at least 1, not {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from tools import REPO_ROOT
    from tools.bench.callgrind import CallgrindError, require_valgrind
    from tools.bench.micro import report
    from tools.bench.micro.run import MicroSpec, run_micro
    from tools.progress import Progress

    if args.common_from is not None and not (args.common_from / "common" / "__init__.py"
                                             ).is_file():
        print(f"saga bench-micro: --common-from {args.common_from} holds no common/ package;"
              f" make one with: git archive COMMIT common | tar -x -C {args.common_from}",
              file=sys.stderr)
        return 2
    chosen = [BY_NAME[name] for name in args.cases] if args.cases else list(CASES)
    spec = MicroSpec(cases=chosen, iterations=args.iterations,
                     common_from=args.common_from.resolve() if args.common_from else None)
    progress = Progress.on_stderr("saga bench-micro", quiet=args.quiet)
    try:
        require_valgrind()
        with progress.task("callgrind runs", total=2 * len(chosen), unit="runs") as runs:
            result = run_micro(spec, ran=runs.advance)
    except CallgrindError as exc:
        print(f"saga bench-micro: {exc}", file=sys.stderr)
        return 1
    path = report.write(result, args.results_dir or REPO_ROOT / "bench" / "results")
    result["results_file"] = str(path)
    print(json.dumps(result, indent=1) if args.json else
          report.table(result) + f"\nresults: {path}")
    return 0
