"""The gap guard's decisions (tools/runtime/eventing/offset_gaps.py), on a fake clock."""

from __future__ import annotations

from tools.runtime.eventing.offset_gaps import GapCheck, OffsetGapGuard

P = ("topic", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_records_in_sequence_pass() -> None:
    guard = OffsetGapGuard(say=print, clock=Clock())
    guard.start(P, 10)
    assert [guard.check(P, n) for n in (10, 11, 12)] == [GapCheck()] * 3


def test_a_skipped_record_sends_the_consumer_back_until_it_arrives() -> None:
    guard = OffsetGapGuard(say=print, clock=Clock())
    guard.start(P, 10)
    assert guard.check(P, 10) == GapCheck()
    assert guard.check(P, 12) == GapCheck(rewind_to=11)
    assert guard.check(P, 12) == GapCheck(rewind_to=11)  # still not readable: again
    assert guard.check(P, 11) == GapCheck()
    assert guard.check(P, 12) == GapCheck()


def test_the_first_record_of_an_assignment_is_checked_against_the_committed_offset() -> None:
    guard = OffsetGapGuard(say=print, clock=Clock())
    guard.start(P, 40)
    assert guard.check(P, 41) == GapCheck(rewind_to=40)


def test_without_a_known_start_the_first_record_sets_it() -> None:
    guard = OffsetGapGuard(say=print, clock=Clock())
    assert guard.check(P, 7) == GapCheck()
    assert guard.check(P, 9) == GapCheck(rewind_to=8)


def test_a_hole_that_stays_is_given_up_once_so_the_partition_goes_on() -> None:
    clock = Clock()
    guard = OffsetGapGuard(say=print, give_up_after_s=5.0, clock=clock)
    guard.start(P, 10)
    assert guard.check(P, 13) == GapCheck(rewind_to=10)
    clock.now += 4.9
    assert guard.check(P, 13) == GapCheck(rewind_to=10)
    clock.now += 0.2
    assert guard.check(P, 13) == GapCheck(given_up=range(10, 13))
    assert guard.check(P, 14) == GapCheck()
    # A later hole gets its own full wait.
    assert guard.check(P, 16) == GapCheck(rewind_to=15)


def test_a_forgotten_partition_starts_over() -> None:
    guard = OffsetGapGuard(say=print, clock=Clock())
    guard.start(P, 10)
    guard.forget(P)
    assert guard.check(P, 50) == GapCheck()
