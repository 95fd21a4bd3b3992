"""The load's outcome mix: parsing, exact proportions, what each scenario must end in."""

from __future__ import annotations

from collections import Counter

import pytest

from tools.loadgen.mix import EXPECTED, FULL_MIX, SCENARIOS, MixError, assign, parse_mix


def test_parse_mix_reads_weights_and_the_full_alias() -> None:
    assert parse_mix("happy=70, cancel=30") == {"happy": 70.0, "cancel": 30.0}
    assert parse_mix("full") == parse_mix(FULL_MIX)
    assert set(parse_mix("full")) == set(SCENARIOS)


@pytest.mark.parametrize("bad", ["", "happy", "happy=x", "joy=1", "happy=-1", "happy=0"])
def test_parse_mix_refuses_nonsense(bad: str) -> None:
    with pytest.raises(MixError):
        parse_mix(bad)


def test_assign_is_exact_and_deterministic() -> None:
    plan = assign(300, parse_mix(FULL_MIX), seed=7)
    counts = Counter(plan)
    assert len(plan) == 300
    assert counts["happy"] == 180 and counts["cancel"] == 24 and counts["timeout"] == 12
    assert plan == assign(300, parse_mix(FULL_MIX), seed=7)
    assert plan != assign(300, parse_mix(FULL_MIX), seed=8)


def test_assign_distributes_the_remainder_to_the_largest_shares() -> None:
    counts = Counter(assign(10, {"happy": 1, "cancel": 1, "timeout": 1}))
    assert sorted(counts.values()) == [3, 3, 4]
    assert sum(counts.values()) == 10


def test_every_scenario_has_an_expected_outcome() -> None:
    assert set(EXPECTED) == set(SCENARIOS)
    for scenario, want in EXPECTED.items():
        assert (want.status == "CANCELLED") == (want.reason is not None), scenario
    # Scenarios that need the customer to act wait in confirm mode.
    assert {s for s, w in EXPECTED.items() if w.payment_mode == "confirm"} == {
        "confirm", "timeout", "cancel"}
