"""A global bound on the bytes of agent batches the collector holds decoded, across all streams.

A batch costs far more memory decoded than on the wire: parsed messages, numpy columns, Arrow
tables, the Arrow IPC block for the insert and chDB's own copy (measured: about 150 MiB of RSS per
10.9 MiB batch in flight, so 30 full batches at once took 4.4 GiB). Each stream therefore acquires
its message's wire size from one `ByteBudget` before parsing it and releases it once the batch is
stored (or refused). When the budget is spent, streams wait in turn (first come, first served) and
read nothing more meanwhile: gRPC flow control holds the rest at the agents, which keep spooling.
That is backpressure, not rejection: every batch is stored, later.

What a waiting stream holds is its one received message (at most the 16 MiB gRPC limit), so the
collector's memory is about: idle + budget x decoding factor + streams x message size in wait.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ByteBudget:
    """Bytes that may be in flight at once; a request larger than the whole budget waits until it
    is the only one, then proceeds alone (so no message is ever refused for its size)."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes <= 0:
            raise ValueError(f"a byte budget must be positive, not {limit_bytes}")
        self.limit_bytes = limit_bytes
        self.in_flight = 0
        self.peak = 0
        self._waiting: deque[tuple[int, asyncio.Future]] = deque()

    async def acquire(self, size: int) -> int:
        """Wait until `size` bytes fit (in arrival order); returns what to pass to `release`."""
        cost = min(size, self.limit_bytes)
        if not self._waiting and self.in_flight + cost <= self.limit_bytes:
            self._take(cost)
            return cost
        granted = asyncio.get_running_loop().create_future()
        self._waiting.append((cost, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(cost)  # granted as the waiter was cancelled: give it back
            else:
                self._waiting.remove((cost, granted))
                self._wake()
            raise
        return cost

    def release(self, cost: int) -> None:
        self.in_flight -= cost
        self._wake()

    def _take(self, cost: int) -> None:
        self.in_flight += cost
        self.peak = max(self.peak, self.in_flight)

    def _wake(self) -> None:
        while self._waiting and self.in_flight + self._waiting[0][0] <= self.limit_bytes:
            cost, granted = self._waiting.popleft()
            self._take(cost)
            granted.set_result(None)
