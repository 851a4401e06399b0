"""The agent watching itself during a step: its CPU, its event loop's lag, and whether it may have been
the bottleneck (DESIGN: a saturated client's step is flagged, never silently published)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncio
import time
from dataclasses import dataclass

LAG_PROBE_S = 0.02          # the lag probe wakes this often
SATURATED_CPU_PCT = 90.0    # of one core: the loop can no longer keep up with what it is asked
SATURATED_LAG_MS = 5.0      # p99 loop lag above this delays stamps and sends
SATURATED_DISPATCH_MS = 5.0  # open loop, no cap: p99 send - scheduled above this means the client sent late


@dataclass(frozen=True, slots=True)
class SelfReport:
    cpu_pct: float           # the agent process's CPU over the step, % of one core
    loop_lag_p99_ms: float

    def saturated(self, dispatch_p99_ms: float, dispatch_counts: bool) -> bool:
        """True when the client may have limited the step. `dispatch_counts`: the step's dispatch delay
        is the client's own (open loop without a concurrency cap)."""
        return (self.cpu_pct >= SATURATED_CPU_PCT or self.loop_lag_p99_ms >= SATURATED_LAG_MS
                or (dispatch_counts and dispatch_p99_ms >= SATURATED_DISPATCH_MS))

    def reasons(self, dispatch_p99_ms: float, dispatch_counts: bool) -> str:
        out = []
        if self.cpu_pct >= SATURATED_CPU_PCT:
            out.append(f"agent CPU {self.cpu_pct:.0f}%")
        if self.loop_lag_p99_ms >= SATURATED_LAG_MS:
            out.append(f"event-loop lag p99 {self.loop_lag_p99_ms:.1f} ms")
        if dispatch_counts and dispatch_p99_ms >= SATURATED_DISPATCH_MS:
            out.append(f"dispatch delay p99 {dispatch_p99_ms:.1f} ms")
        return ", ".join(out)


class SelfMonitor:
    """Start at a step's beginning, `stop()` at its end."""

    def __init__(self) -> None:
        self._lags_ns: list[int] = []
        self._task: asyncio.Task | None = None
        self._cpu0 = 0.0
        self._wall0 = 0.0

    def start(self) -> None:
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()
        self._task = asyncio.create_task(self._probe())

    async def _probe(self) -> None:
        lags = self._lags_ns
        while True:
            due = time.perf_counter_ns() + int(LAG_PROBE_S * 1e9)
            await asyncio.sleep(LAG_PROBE_S)
            lags.append(max(time.perf_counter_ns() - due, 0))

    async def stop(self) -> SelfReport:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        wall = time.perf_counter() - self._wall0
        cpu = 100.0 * (time.process_time() - self._cpu0) / wall if wall > 0 else 0.0
        return SelfReport(cpu_pct=cpu, loop_lag_p99_ms=percentile(self._lags_ns, 0.99) / 1e6)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile of `values` (the value at rank q x n, so it never falls as q rises); 0 for none."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
