"""A sending process watching itself during a step: its CPU and its event loop's lag, two of the figures
the step's verdict rests on (core/verdict.py)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncio
import time
from dataclasses import dataclass

LAG_PROBE_S = 0.02          # the lag probe wakes this often


@dataclass(frozen=True, slots=True)
class SelfReport:
    cpu_pct: float           # the agent process's CPU over the step, % of one core
    loop_lag_p99_ms: float


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
    """The q-quantile of `values`: the value at 0-based rank floor(q x n) of the sorted values, as every
    report computes it (ClickHouse quantileExact; collector/views.py); 0 for none."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
