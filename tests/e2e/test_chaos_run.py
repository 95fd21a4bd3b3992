"""The chaos tool end to end, small: a real stack on its own PostgreSQL and broker, a few
SIGKILLs and a PostgreSQL restart under 80 orders, then `saga check`. The full run
(`task chaos`, 5,000 orders) is a measurement; this checks that the tool itself works and
cleans up after a clean run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import session_broker_kind
from tools.loadgen.chaos import ChaosSpec, run_chaos

pytestmark = pytest.mark.e2e


def test_a_small_chaos_run_is_clean_and_leaves_nothing_behind(tmp_path: Path) -> None:
    spec = ChaosSpec(orders=80, mix="happy=4,cancel=1,shipping_failed=1", customers=10,
                     concurrency=4, kill_every_s=1.0, max_kills=3, pg_restart_at_s=0.5,
                     broker_cut_at_s=None, settle_s=120,
                     broker="kafka" if session_broker_kind() == "kafka" else "embedded")
    result = run_chaos(spec, work_root=tmp_path)
    assert (result["settled"], result["lost"], result["doubled"], result["violations"]) \
        == (80, 0, 0, 0), result["check"]
    assert sum(result["kills"].values()) >= 1
    assert any("restarted PostgreSQL" in line for line in result["faults"])
    assert isinstance(result["refetched"], int)
    assert "kept" not in result
    assert not list(tmp_path.iterdir())  # the run's directory is gone
