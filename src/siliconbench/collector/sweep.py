"""Sweep points summarised from the step rows a report already read: the view `sweep_results` computed
in Python over `step_results`' rows, so one report evaluates the per-step figures once (the view stays,
for SQL users, and tests/collector/test_sweep.py holds the two equal).

Per point (run, node, mode, concurrency, rate): the repetitions, their steps in order, the steps the agent
flagged or that were cut short, and each figure's median over the repetitions with the lowest and highest
(`x`, `x_min`, `x_max`); percentile arrays element by element. The median is ClickHouse's `median`
(`quantile(0.5)`: the sorted values interpolated at 0.5 x (n - 1)); a figure no repetition has (NULL) reads
NULL, as ClickHouse's aggregates skip NULLs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from siliconbench.collector.views import SWEEP_ARRAYS, SWEEP_SCALARS

Row = dict[str, Any]


def _present(values: Iterable[Any]) -> list[float]:
    return sorted(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)))


def median(values: Iterable[Any]) -> float | None:
    """ClickHouse's median: linear interpolation between the two values around 0.5 x (n - 1)."""
    present = _present(values)
    if not present:
        return None
    index = 0.5 * (len(present) - 1)
    left = math.floor(index)
    if left + 1 >= len(present):
        return float(present[left])
    return float(present[left]) + (index - left) * (float(present[left + 1]) - float(present[left]))


def _least(values: Iterable[Any]) -> Any:
    present = _present(values)
    return present[0] if present else None


def _most(values: Iterable[Any]) -> Any:
    present = _present(values)
    return present[-1] if present else None


def _each(summary, arrays: Sequence[Sequence[float] | None]) -> list[Any]:
    """`summary` element by element over arrays of any lengths (ClickHouse's -ForEach)."""
    present: list[Sequence[float]] = [a for a in arrays if a]
    width = max((len(a) for a in present), default=0)
    return [summary([a[i] for a in present if i < len(a)]) for i in range(width)]


def sweep_rows(steps: Sequence[Row]) -> list[Row]:
    """The sweep_results rows of `steps` (step_results rows), ordered as the view orders them."""
    groups: dict[tuple, list[Row]] = {}
    for row in steps:
        groups.setdefault((row["run_id"], row["agent_id"], row["mode"], row["concurrency"], row["rate_rps"]),
                          []).append(row)
    out = []
    for (run_id, agent_id, mode, concurrency, rate_rps), rows in groups.items():
        point: Row = {"run_id": run_id, "agent_id": agent_id, "mode": mode, "concurrency": concurrency,
                      "rate_rps": rate_rps, "repetitions": len(rows), "steps": sorted(r["step"] for r in rows),
                      "saturated_steps": sum(1 for r in rows if r["client_saturated"]),
                      "partial_steps": sum(1 for r in rows if not r["has_step"]),
                      "agent_cpu_pct_max": _most(r["agent_cpu_pct"] for r in rows),
                      "loop_lag_p99_ms_max": _most(r["loop_lag_p99_ms"] for r in rows)}
        for name in SWEEP_SCALARS:
            values = [r[name] for r in rows]
            point.update({name: median(values), f"{name}_min": _least(values), f"{name}_max": _most(values)})
        for name in SWEEP_ARRAYS:
            arrays = [r[name] for r in rows]
            point.update({name: _each(median, arrays), f"{name}_min": _each(_least, arrays),
                          f"{name}_max": _each(_most, arrays)})
        out.append(point)
    return sorted(out, key=lambda p: (p["run_id"], p["agent_id"], p["steps"][0]))
