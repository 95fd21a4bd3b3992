"""The state machine's transition table (pure logic)."""

from __future__ import annotations

import itertools

import pytest

from common.order_state import STATUS_GROUP, TERMINAL, TRANSITIONS, Status, can_transition


def test_happy_path_is_legal() -> None:
    path = [Status.CREATED, Status.AWAITING_PAYMENT, Status.PAYMENT_PROCESSING, Status.PAID,
            Status.COMPLETED]
    for current, wanted in itertools.pairwise(path):
        assert can_transition(current, wanted)


@pytest.mark.parametrize("status", [s for s in Status if s not in TERMINAL])
def test_cancel_from_any_non_terminal_state(status: Status) -> None:
    assert can_transition(status, Status.CANCELLED)


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_states_are_final(status: Status) -> None:
    assert TRANSITIONS[status] == frozenset()


def test_no_skipping_and_no_going_back() -> None:
    assert not can_transition(Status.CREATED, Status.PAID)
    assert not can_transition(Status.PAID, Status.AWAITING_PAYMENT)
    assert not can_transition(Status.AWAITING_PAYMENT, Status.COMPLETED)


def test_every_status_has_a_coarse_group() -> None:
    assert set(STATUS_GROUP) == set(Status)
    assert STATUS_GROUP[Status.PAID] == "processing"
