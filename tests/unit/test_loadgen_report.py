"""The bench's files: the JSON holds everything, the PNG is a real picture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tools.bench.stack import report


def test_write_saves_the_json_and_a_png_of_the_run(tmp_path: Path) -> None:
    result: dict[str, Any] = {
        "orders": 3, "orders_per_s": 1.5, "p50_ms": 120.0, "p95_ms": 300.0, "p99_ms": 310.0,
        "pg_bound_orders_per_s": 200.0, "bound_fraction": 0.0075, "violations": 0,
        "latencies_ms": [110.0, 120.0, 310.0],
        "timeline": {"submitted": [2, 1, 0], "terminal": [0, 2, 1]},
    }
    path = report.write(result, tmp_path)

    assert json.loads(path.read_text())["latencies_ms"] == [110.0, 120.0, 310.0]
    picture = Path(result["plot_file"])
    assert picture.parent == tmp_path and picture.suffix == ".png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 10_000  # two panels with axes, not an empty canvas
