"""Per-order records as JSON: for a person's post-mortem of one run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from tools.loadgen.load import OrderRecord


def write_records(path: str | Path, records: Sequence[OrderRecord]) -> None:
    rows = [asdict(r) | {"latency_ms": r.latency_ms} for r in records]
    Path(path).write_text(json.dumps(rows, default=str, indent=1), encoding="utf-8")
