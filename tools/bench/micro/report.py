"""The micro figures as JSON (bench/results/micro-<time>.json) and as a table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def write(result: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"micro-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return path


def table(result: dict[str, Any]) -> str:
    """Instructions per operation, one row per case."""
    head = f"{'case':<14}{'instructions/op':>16}{'N':>7}  what"
    lines = [head, "-" * len(head)]
    for row in result["cases"]:
        lines.append(f"{row['case']:<14}{row['per_operation']:>16,.0f}{row['n']:>7}  "
                     f"{row['what']}")
    lines.append(f"common/: {result['common']} (HEAD {result['commit']}), "
                 f"Python {result['python']}")
    return "\n".join(lines)
