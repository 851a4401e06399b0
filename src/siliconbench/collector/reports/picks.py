"""Picking a series' sweep points (lightest load, peak) and the small arithmetic the tables share:
a figure relative to the baseline, a ratio, a share as a percentage, the range over repetitions."""

from __future__ import annotations

from collections.abc import Callable

from siliconbench.collector.figures import Percentiles, PointRow, SweepFigures

NO_FIGURES = SweepFigures()        # a series without points: every figure missing
NO_PERCENTILES = Percentiles()


def lowest(points: list[PointRow]) -> PointRow | None:
    """The lightest load: the lowest closed-loop concurrency, else the lowest offered rate."""
    return min(points, key=lambda p: p.point.order(), default=None)


def peak(points: list[PointRow], metric: Callable[[SweepFigures], float | None] = lambda f: f.output_tps
         ) -> PointRow | None:
    """The point with the highest median `metric` (output tok/s unless named)."""
    return max(points, key=lambda p: metric(p.median) or 0.0, default=None)


def load(point: PointRow | None) -> str | None:
    """The point's label (collector/points.py): 'concurrency 8', 'poisson 4 req/s, cap 16'."""
    return None if point is None else point.point.label()


def median(point: PointRow | None) -> SweepFigures:
    """The point's medians; all missing for no point."""
    return NO_FIGURES if point is None else point.median


def q(percentiles: Percentiles | None) -> Percentiles:
    """Percentiles that may be missing, read as all missing."""
    return percentiles or NO_PERCENTILES


def num(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def pct_of(share: float | None) -> float | None:
    return None if share is None else share * 100


def ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base


def relative(value: float | None, base: float | None) -> float | None:
    """value ÷ base − 1, the 'vs baseline' figure."""
    if value is None or base is None or base == 0:
        return None
    return value / base - 1


def across(point: PointRow | None, figure: Callable[[SweepFigures], float | None]) -> str:
    """The figure's range over the point's repetitions, 'low–high (n=3)'; empty for one repetition."""
    if point is None or point.repetitions < 2:
        return ""
    low, high = figure(point.low), figure(point.high)
    if low is None or high is None:
        return ""
    return f"{low:,.1f}–{high:,.1f} (n={point.repetitions})"
