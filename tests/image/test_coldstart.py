"""Cold start from the image (tools.bench.image_coldstart, the bench behind docs/operations.md's
figure): a fresh process of the function's container, to ready, then its first event. A
few runs here; the figure comes from `python -m tools.bench.image_coldstart --runs 10`."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.image.conftest import FIGURES
from tools.bench.image_coldstart import measure, summary
from tools.image.rootfs import MountedImage
from tools.image.workloads import Workload

RUNS = 3
# Far above what it takes (docs/operations.md): a bound that catches a start gone wrong
# (an import that hangs, a probe that never answers) without flaking on a busy machine.
MAX_MEDIAN_READY_S = 15.0


@pytest.mark.parametrize("function", ["inventory", "notifications"])
def test_a_cold_start_from_the_image_serves_its_first_event(
    function: str, services: Mapping[str, Workload], mounted: MountedImage, tmp_path: Path,
) -> None:
    results = measure(services[function], mounted.path, RUNS, tmp_path)
    FIGURES[f"cold start: {function}"] = summary(function, results)
    assert len(results) == RUNS
    assert statistics.median(r.ready_s for r in results) < MAX_MEDIAN_READY_S
