"""The HTML report's charts, as SVG figures with their legends: closed-loop sweeps against concurrency
(TTFT and ITL with their p90–p99 band and repetition whiskers, throughput), open-loop sweeps against the
offered rate (TTFT and E2E percentiles; achieved against offered with the spread a Poisson schedule has by
chance), latency against throughput, one CDF per metric with a curve per sweep point on one shared axis,
devices over time and cost. A chart is drawn only where the runs have its kind of point: no empty frames."""

from __future__ import annotations

import math
from collections.abc import Callable

from siliconbench.collector.figures import Percentiles, PointRow, SweepFigures
from siliconbench.collector.reports.escape import html as escape
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.svg import Line, colour, line_chart
from siliconbench.collector.rollups import Series

OFFERED_AXIS = "offered rate (req/s)"
Z95 = 1.96  # a Poisson count n is n ± 1.96·√n in 95 % of steps


def swatch(i: int) -> str:
    return f'<span class="sw" style="background:{colour(i)}"></span>'


def figure(svg: str, names: list[str], indices: list[int], note: str = "") -> str:
    """A chart with its legend: an HTML list that wraps, so entries never overlap."""
    legend = "".join(f'<li>{swatch(i)}<span class="name">{escape(names[i])}</span></li>' for i in indices)
    extra = f'<figcaption class="formula">{escape(note)}</figcaption>' if note else ""
    return f'<figure class="chart">{svg}<ul class="legend">{legend}</ul>{extra}</figure>'


def y(value: float | None) -> float:
    """A figure as a chart coordinate: a missing one is a gap (NaN), 0.0 is a point on the axis."""
    return math.nan if value is None else float(value)


def _at(p: Percentiles | None, q: float) -> float:
    return y(None if p is None else p.at(q))


def _ttft(f: SweepFigures) -> Percentiles | None:
    return f.ttft_ms


def _itl_token(f: SweepFigures) -> Percentiles | None:
    return f.itl_token_ms


def _e2e(f: SweepFigures) -> Percentiles | None:
    return f.e2e_ms


def _rep_range(point: PointRow, percentiles: Callable[[SweepFigures], Percentiles | None]) -> tuple[float, float]:
    """The p50's lowest and highest repetition, for a whisker; NaN (none drawn) for one repetition."""
    low, high = _at(percentiles(point.low), 0.5), _at(percentiles(point.high), 0.5)
    if point.repetitions < 2:
        return math.nan, math.nan
    return low, high


def _percentile_lines(series: list[Series], points: Callable[[Series], list[PointRow]], tips: list[str],
                      x: Callable[[PointRow], float],
                      percentiles: Callable[[SweepFigures], Percentiles | None]) -> list[Line]:
    lines = []
    for i, s in enumerate(series):
        found = sorted(points(s), key=x)
        lines.append(Line(i, [(x(p), _at(percentiles(p.median), 0.5)) for p in found], tips[i],
                          band=[(x(p), _at(percentiles(p.median), 0.9), _at(percentiles(p.median), 0.99))
                                for p in found],
                          whiskers=[(x(p), *_rep_range(p, percentiles)) for p in found]))
    return lines


def _shown(lines: list[Line]) -> list[int]:
    return [ln.index for ln in lines if ln.points]


BAND_NOTE = "Line: p50; shaded: p90 to p99; vertical strokes: p50's range over the repetitions."


def closed_charts(report: Report, names: list[str], tips: list[str]) -> list[str]:
    """Against concurrency, over the closed-loop points: none where the runs have none."""
    fig = report.figures

    def closed(s: Series) -> list[PointRow]:
        return [p for p in fig.points_of(s) if not p.point.open_loop]

    if not any(closed(s) for s in report.series):
        return []
    out = []
    for percentiles, title in ((_ttft, "TTFT"), (_itl_token, "ITL per token")):
        lines = _percentile_lines(report.series, closed, tips, lambda p: p.concurrency, percentiles)
        out.append(figure(line_chart(f"{title} vs concurrency: p50, p90–p99 band", lines, "concurrency", "ms"),
                          names, _shown(lines), BAND_NOTE))
    scaling = [Line(i, [(p.concurrency, y(p.median.output_tps)) for p in closed(s)], tips[i])
               for i, s in enumerate(report.series)]
    out.append(figure(line_chart("Throughput vs concurrency", scaling, "concurrency", "output tok/s"), names,
                      _shown(scaling)))
    return out


def poisson_spread(p: PointRow) -> float | None:
    """The achieved rate's 95 % chance spread for a Poisson step of the point: ±1.96·√n ÷ duration (n
    requests over its wall time); None where either is unknown."""
    n, wall = p.median.requests, p.median.wall_s
    return Z95 * math.sqrt(n) / wall if n and wall else None


def open_charts(report: Report, names: list[str], tips: list[str]) -> list[str]:
    """Against the offered rate, over the open-loop points: latency percentiles, and achieved against
    offered with the band a Poisson schedule's own noise spans."""
    fig = report.figures

    def rated(s: Series) -> list[PointRow]:
        return [p for p in fig.points_of(s) if p.point.open_loop and p.rate_rps > 0]

    if not any(rated(s) for s in report.series):
        return []
    out = []
    for percentiles, title in ((_ttft, "TTFT"), (_e2e, "E2E")):
        lines = _percentile_lines(report.series, rated, tips, lambda p: p.rate_rps, percentiles)
        out.append(figure(line_chart(f"{title} vs offered rate: p50, p90–p99 band", lines, OFFERED_AXIS, "ms"),
                          names, _shown(lines), BAND_NOTE))
    achieved = []
    for i, s in enumerate(report.series):
        found = sorted(rated(s), key=lambda p: p.rate_rps)
        band = [(p.rate_rps, p.rate_rps - w, p.rate_rps + w) for p in found
                if p.point.mode == "poisson" and (w := poisson_spread(p)) is not None]
        achieved.append(Line(i, [(p.rate_rps, y(p.median.rps)) for p in found], tips[i], band=band))
    out.append(figure(line_chart("Achieved vs offered rate", achieved, OFFERED_AXIS, "completed req/s"),
                      names, _shown(achieved), rate_noise_note(report)))
    return out


def rate_noise_note(report: Report) -> str:
    """What a short Poisson step's rate can be by chance, from the shortest such step of the report."""
    counts = [int(p.median.requests) for s in report.series for p in report.figures.points_of(s)
              if p.point.mode == "poisson" and p.median.requests]
    text = ("Shaded: offered ± 1.96·√n ÷ duration, the 95 % range a Poisson step of n arrivals reaches by chance; "
            "a point inside it sent and completed what was offered.")
    if counts:
        n = min(counts)
        text += (f" A Poisson step's rate is known to about ±{100 / math.sqrt(n):.0f} % (1 s.d., ±{196 / math.sqrt(n):.0f} "
                 f"% at 95 %) with {n} arrivals, its shortest here: give steps more requests to pin the rate down.")
    return text


def tradeoff_chart(report: Report, names: list[str], tips: list[str]) -> str:
    curve = [Line(i, [(y(p.median.output_tps), _at(p.median.e2e_ms, 0.5)) for p in report.figures.points_of(s)],
                  tips[i]) for i, s in enumerate(report.series)]
    return figure(line_chart("Latency vs throughput (each point a sweep point)", curve, "output tok/s",
                             "E2E p50 (ms)"), names, _shown(curve))


def distribution_charts(report: Report, names: list[str]) -> list[str]:
    """One CDF per metric, a curve per series and sweep point, on one shared axis that ends at the highest
    98th percentile (the slowest outliers past it are left off, their value in the tables)."""
    spread, out = report.spread, []
    for metric, title in (("ttft_ms", "TTFT"), ("itl_token_ms", "ITL per token")):
        lines: list[Line] = []
        labels: list[str] = []
        for i, s in enumerate(report.series):
            for point in spread.points(s.key):
                found = spread.at(s.key, point, metric)
                if found is None:
                    continue
                label = point.label() if len(report.series) == 1 else f"{names[i]} · {point.label()}"
                lines.append(Line(len(labels), [(v, 100 * q) for v, q in found.cdf()], label))
                labels.append(label)
        if not lines:
            continue
        limit = max(v for ln in lines for v, q in ln.points if q <= 98.0)
        out.append(figure(line_chart(f"{title} distribution per sweep point (CDF)", lines, f"{title} (ms)",
                                     "% of requests at or below", x_limit=limit), labels, list(range(len(labels))),
                          "One curve per sweep point (rates are never pooled); the axis ends at the highest 98th "
                          "percentile."))
    return out
