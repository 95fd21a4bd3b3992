"""The threads an event function runs its handlers on: at most `size` at once (Knative's
containerConcurrency), the caller's coroutine awaiting each call. A call is one queue put
and one call_soon_threadsafe back, without the concurrent.futures Future that
loop.run_in_executor chains to an asyncio one (docs/benchmarks.md, "Serving a delivery").
Threads start on first use and are not tied to a loop: a test client's loop per request
shares them. At exit the interpreter waits for calls still running, as it does for a
ThreadPoolExecutor's. Contextvars are not carried over, as with run_in_executor."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any],
              tuple[Any, ...]]


class WorkerThreads:
    def __init__(self, size: int, name: str) -> None:
        self._size, self._name = max(1, size), name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    async def run(self, call: Callable[..., Any], *args: Any) -> Any:
        """call(*args) on one of the threads; its result, or its exception raised here."""
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._calls.put((loop, future, call, args))
        return await future

    def close(self) -> None:
        """Let the calls already queued finish, then stop every thread."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._calls.put(None)
        for thread in threads:
            thread.join()

    def _start(self) -> None:
        with self._lock:
            if self._threads:
                return
            self._threads = [threading.Thread(target=self._work, name=f"{self._name}_{i}",
                                              daemon=True) for i in range(self._size)]
            for thread in self._threads:
                thread.start()
        atexit.register(self.close)

    def _work(self) -> None:
        while (item := self._calls.get()) is not None:
            loop, future, call, args = item
            try:
                result = call(*args)
            except BaseException as exc:  # handed to the awaiting coroutine
                _settle_soon(loop, future, None, exc)
            else:
                _settle_soon(loop, future, result, None)
            del item, future, call, args  # nothing of a call outlives it here


def _settle_soon(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any,
                 error: BaseException | None) -> None:
    # A loop closed meanwhile (RuntimeError) has nobody awaiting the answer any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the request went away (a shutdown, a client gone)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
