"""Sub-millisecond sleeps for the event loop.

Both event loops wake timers on a millisecond grid: asyncio's epoll wait rounds its timeout *up* to whole
milliseconds and uvloop keeps time in milliseconds, so a plain `asyncio.sleep` lands up to 1 ms late
(measured p50 ~0.6-1.1 ms on the default loop). The simulator must hit each chunk's deadline to ~0.1 ms,
so one helper thread waits on a heap of deadlines with `threading.Condition.wait` (nanosecond timeouts)
and wakes the loop with `call_soon_threadsafe`. Spinning the loop instead would burn a core at
concurrency > 1, which the benchmark's own client would feel on a small machine.

All deadlines are `time.monotonic()` seconds (the same clock as the default loop's `loop.time()`; uvloop's
is millisecond-granular, so it is not used).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from time import monotonic


class DeadlineTimer:
    """Wakes coroutines at absolute `time.monotonic()` deadlines. `start` in the loop; `close` when done."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind to the running loop and start the waiting thread."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="sim-deadline-timer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread; pending sleepers are never woken (their requests are being torn down). Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    async def sleep_until(self, deadline: float) -> None:
        """Return at (~0.1 ms after) `deadline`; immediately if it has passed."""
        if deadline <= monotonic():
            return
        assert self._loop is not None, "DeadlineTimer.start() was not called"
        fut: asyncio.Future[None] = self._loop.create_future()
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), fut))
            if self._heap[0][2] is fut:  # new earliest deadline: re-arm the thread's wait
                self._cond.notify()
        await fut

    def _run(self) -> None:
        heap, cond = self._heap, self._cond
        while True:
            with cond:
                while True:
                    if self._closed:
                        return
                    if not heap:
                        cond.wait()
                        continue
                    delay = heap[0][0] - monotonic()
                    if delay > 0:
                        cond.wait(delay)
                        continue
                    break
                now = monotonic()
                due = []
                while heap and heap[0][0] <= now:
                    due.append(heapq.heappop(heap)[2])
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(_wake, due)
            except RuntimeError:  # loop closed under us: nothing left to wake
                return


def _wake(futures: list[asyncio.Future[None]]) -> None:
    for fut in futures:
        if not fut.done():  # a cancelled sleeper's future is already done
            fut.set_result(None)
