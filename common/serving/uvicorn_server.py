"""uvicorn's Server, woken once a second instead of ten times.

uvicorn's main loop sleeps 0.1 s between ticks, to notice a stop signal and to refresh the
Date header once a second: ten wake-ups a second in every function's process, busy or
idle (docs/benchmarks.md, "Idle ticks"). Here the loop waits for an event that the signal
handler sets, or `tick_s`, so a stop is still noticed at once and the Date header still
changes every second.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import FrameType

import uvicorn

# uvicorn's on_tick refreshes the Date header when its counter is a multiple of 10 (ten
# ticks of 0.1 s); each tick here is a second, so the counter moves by 10.
_COUNTER_STEP, _COUNTER_WRAP = 10, 864_000


class QuietServer(uvicorn.Server):
    tick_s = 1.0

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + _COUNTER_STEP) % _COUNTER_WRAP
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # From a signal handler or another thread: only the thread-safe call may touch the
        # loop. Before main_loop started there is nothing to wake; it sees should_exit.
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
