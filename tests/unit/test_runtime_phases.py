"""The waits of `./taskw up`'s start (tools/runtime/phases.py wait_until: the API's health,
the sources' partitions): each ends at once on a stop request, however long it had left,
and otherwise on its condition or its timeout. The condition's own calls drive the stop,
so nothing here depends on timing."""

from __future__ import annotations

import threading

import pytest

from tools.runtime.phases import StopRequested, wait_until


def test_a_stop_ends_the_wait_at_once() -> None:
    stop = threading.Event()
    asked: list[int] = []

    def never_ready() -> bool:
        asked.append(1)
        if len(asked) == 3:
            stop.set()  # Ctrl-C arrives while the start waits: an hour of it left
        return False

    with pytest.raises(StopRequested):
        wait_until(never_ready, stop=stop, timeout=3600, interval=0.01)
    assert len(asked) == 3  # not asked again after the stop


def test_a_stop_before_the_wait_asks_nothing() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(StopRequested):
        wait_until(lambda: pytest.fail("asked after the stop"), stop=stop, timeout=3600)


def test_without_a_stop_it_ends_on_its_condition_or_its_timeout() -> None:
    stop = threading.Event()
    answers = iter([False, False, True])
    assert wait_until(lambda: next(answers), stop=stop, timeout=3600, interval=0.001)
    assert not wait_until(lambda: False, stop=stop, timeout=0.05, interval=0.01)
