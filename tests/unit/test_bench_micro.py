"""The pure parts of `saga bench-micro` (tools/bench/micro): the total read from a callgrind
output file, the instructions per operation between two runs, what the child's path puts
first, and that every case names a workload that exists. The measuring itself is a bench
(`./taskw bench:micro`), not a test."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

from tools import REPO_ROOT
from tools.bench.callgrind import CallgrindError, parse_total_ir
from tools.bench.micro.cases import CASES
from tools.bench.micro.report import table
from tools.bench.micro.run import child_env, per_operation

HEAD = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 31127\n" \
       "cmd:  python -m tools.bench.micro.child jwt:new_tokens 0 200\npart: 1\n\n" \
       "desc: I1 cache: \n\npositions: line\nevents: Ir\n"


def test_the_total_is_the_summary_line() -> None:
    assert parse_total_ir(HEAD + "summary: 2961506849\n\n\nob=(32) x\nfn=(1) f\n0 5\n") \
        == 2961506849


def test_a_file_with_only_totals_at_its_end_is_read_too() -> None:
    assert parse_total_ir(HEAD + "fn=(1) f\n0 5\n\ntotals: 123456\n") == 123456


@pytest.mark.parametrize("text", [HEAD, HEAD + "summary: \n", HEAD + "summary: 12abc\n", ""])
def test_a_file_without_a_count_is_an_error(text: str) -> None:
    with pytest.raises(CallgrindError, match="no 'summary:' or 'totals:' line"):
        parse_total_ir(text)


def test_per_operation_is_the_difference_over_n() -> None:
    assert per_operation(2_237_179_303, 2_431_103_303, 1000) == 193_924.0
    assert per_operation(1000, 1650, 200) == 3.25


@pytest.mark.parametrize("n", [0, -5])
def test_no_operations_cannot_be_divided(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        per_operation(1, 2, n)


def test_another_common_comes_before_the_project_on_the_childs_path(tmp_path: Path) -> None:
    assert child_env(tmp_path)["PYTHONPATH"].split(os.pathsep) == [str(tmp_path),
                                                                    str(REPO_ROOT)]
    assert child_env(None)["PYTHONPATH"] == str(REPO_ROOT)
    assert child_env(None)["PYTHONHASHSEED"] == "0"


def test_every_case_names_a_workload_function() -> None:
    for case in CASES:
        module, function = case.workload.split(":")
        workload = importlib.import_module(f"tools.bench.micro.workloads.{module}")
        assert callable(getattr(workload, function)), case
    assert [c.name for c in CASES] == ["log-line", "delivery", "jwt-repeated", "jwt-new"]


def test_the_table_has_a_row_per_case_with_its_figure() -> None:
    result = {"commit": "abc1234", "common": "/x/common", "python": "3.11.7", "cases": [
        {"case": "log-line", "what": "one step line", "n": 3000, "per_operation": 70276.4}]}
    lines = table(result).splitlines()
    assert lines[2].split()[:3] == ["log-line", "70,276", "3000"]
    assert lines[-1] == "common/: /x/common (HEAD abc1234), Python 3.11.7"
