"""Small inline-SVG charts (bars and lines) for the HTML report: no scripts, no CDN, no fonts to fetch.

Charts carry no legend of their own: the page puts an HTML legend under each (a wrapping list, laid out by
the browser, so entries never overlap whatever their number or length), in the same colours. Every mark
has a `<title>` tooltip naming its series and run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from siliconbench.collector.reports.escape import html as escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
DASHES = ("", "6 3", "2 3", "8 3 2 3")  # past ten series the colours repeat, with another dash pattern
W, H = 520, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 44


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def dash(i: int) -> str:
    return DASHES[(i // len(PALETTE)) % len(DASHES)]


@dataclass(frozen=True, slots=True)
class Bar:
    index: int  # the series' place: its colour
    value: float | None
    tip: str
    low: float | None = None  # whisker: the lowest and highest repetition
    high: float | None = None


@dataclass(frozen=True, slots=True)
class Line:
    index: int
    points: list[tuple[float, float]]
    tip: str
    band: list[tuple[float, float, float]] = field(default_factory=list)  # (x, low, high), shaded
    whiskers: list[tuple[float, float, float]] = field(default_factory=list)  # (x, low, high)
    marks_only: bool = False  # each point a marker (a cross), not joined: points that are no curve


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def ticks(value: float) -> list[float]:
    """Round ticks from 0 to at least `value`, 1-2-5 steps apart (5, 10, 20 ms; never 6.25 or 18.8), at most
    six intervals: the last is the axis' end."""
    if not math.isfinite(value) or value <= 0:
        return [0.0, 0.25, 0.5, 0.75, 1.0]
    exp = 10 ** math.floor(math.log10(value / 6))
    step = next(m * exp for m in (1, 2, 5, 10) if value / (m * exp) <= 6)
    count = max(math.ceil(value / step - 1e-9), 1)
    return [round(k * step, 12) for k in range(count + 1)]


def _nice_max(value: float) -> float:
    return ticks(value)[-1]


def _label(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:,.1f}k".replace(".0k", "k")
    return f"{v:,.4g}"


def _value(v: float) -> str:
    return f"{v:,.4g}"


def _frame(title: str, y_max: float, y_label: str) -> list[str]:
    plot_h = H - TOP - BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="{escape(title)}">',
           f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<text x="14" y="{TOP + plot_h / 2}" font-size="11" transform="rotate(-90 14 {TOP + plot_h / 2})" '
           f'text-anchor="middle">{escape(y_label)}</text>']
    for v in ticks(y_max):
        y = TOP + plot_h - plot_h * v / y_max
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_label(v)}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{W - RIGHT}" y2="{TOP + plot_h}" stroke="#333"/>')
    return out


def bar_chart(title: str, bars: list[Bar], y_label: str) -> str:
    """One bar per series, in its colour, with the repetitions' range as a whisker where known."""
    known = [v for b in bars for v in (b.value, b.high) if v is not None and math.isfinite(v)]
    y_max = _nice_max(max(known, default=1.0))
    out = _frame(title, y_max, y_label)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    base = TOP + plot_h

    def y(v: float) -> float:
        return base - plot_h * v / y_max

    for i, b in enumerate(bars):
        x, mid = LEFT + i * slot + slot * 0.15, LEFT + i * slot + slot * 0.5
        if b.value is None or not math.isfinite(b.value):
            out.append(f'<text x="{mid:.1f}" y="{base - 4:.1f}" font-size="10" text-anchor="middle">n/a'
                       f"<title>{escape(b.tip)}</title></text>")
            continue
        out.append(f'<rect x="{x:.1f}" y="{y(b.value):.1f}" width="{slot * 0.7:.1f}" height="{base - y(b.value):.1f}" '
                   f'fill="{colour(b.index)}"><title>{escape(b.tip)}: {b.value:,.4g}</title></rect>')
        if b.low is not None and b.high is not None and _finite(b.low, b.high):
            low, high = y(b.low), y(b.high)
            out.append(f'<path d="M{mid:.1f},{low:.1f}V{high:.1f}M{mid - 5:.1f},{low:.1f}h10M{mid - 5:.1f},{high:.1f}h10" '
                       'stroke="#222" stroke-width="1.2"/>')
        if slot >= 28:  # the value over the bar where there is room for it
            out.append(f'<text x="{mid:.1f}" y="{y(b.value) - 4:.1f}" font-size="10" text-anchor="middle">'
                       f"{_label(b.value)}</text>")
    out.append("</svg>")
    return "\n".join(out)


def line_chart(title: str, lines: list[Line], x_label: str, y_label: str,
               spans: list[tuple[float, float, str]] | None = None, x_limit: float | None = None) -> str:
    """Lines over a shared x axis, each with an optional shaded band and whiskers; `spans` (x from, x to,
    label) are shaded behind them in alternating tones, labelled at the top (a run's steps over time);
    `x_limit` ends the x axis there (points beyond it are left off: a distribution's slowest outliers)."""
    spans = spans or []
    xs = [x for ln in lines for x, _ in ln.points if math.isfinite(x) and (x_limit is None or x <= x_limit)]
    xs += [end for _, end, _ in spans] + ([x_limit] if x_limit is not None else [])
    ys = [y for ln in lines for _, y in ln.points if math.isfinite(y)]
    ys += [high for ln in lines for _, _, high in ln.band + ln.whiskers if math.isfinite(high)]
    x_max, y_max = _nice_max(max(xs, default=1.0)), _nice_max(max(ys, default=1.0))
    out = _frame(title, y_max, y_label)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def at(x: float, y: float) -> str:
        return f"{LEFT + plot_w * x / x_max:.1f},{TOP + plot_h - plot_h * y / y_max:.1f}"

    for k, (start, end, label) in enumerate(spans):
        x0, x1 = LEFT + plot_w * start / x_max, LEFT + plot_w * end / x_max
        out.append(f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 0.5):.1f}" height="{plot_h}" '
                   f'fill="{"#dde6f0" if k % 2 else "#eef2f6"}"><title>{escape(label)}</title></rect>')
        if x1 - x0 >= 6 * len(label):  # the label where it fits
            out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{TOP + 10}" font-size="9" text-anchor="middle" '
                       f'fill="#555">{escape(label)}</text>')
    steps = sorted(set(xs))  # a few whole numbers (concurrency levels) are the ticks themselves
    whole = 0 < len(steps) <= 8 and all(float(x).is_integer() for x in steps) and not spans
    for v in steps if whole else ticks(x_max):
        out.append(f'<text x="{LEFT + plot_w * v / x_max:.1f}" y="{TOP + plot_h + 14}" font-size="10" '
                   f'text-anchor="middle">{_label(v)}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{H - 10}" font-size="11" text-anchor="middle">{escape(x_label)}</text>')
    for ln in lines:
        c, tip = colour(ln.index), escape(ln.tip)
        band = [(x, lo, hi) for x, lo, hi in ln.band if _finite(x, lo, hi)]
        if band:
            ring = [at(x, hi) for x, _, hi in band] + [at(x, lo) for x, lo, _ in reversed(band)]
            out.append(f'<polygon points="{" ".join(ring)}" fill="{c}" fill-opacity="0.15" stroke="none">'
                       f"<title>{tip}</title></polygon>")
        for x, lo, hi in ln.whiskers:
            if _finite(x, lo, hi):
                out.append(f'<polyline points="{at(x, lo)} {at(x, hi)}" stroke="{c}" stroke-width="1"/>')
        shown = [(x, y) for x, y in ln.points if _finite(x, y) and x <= x_max]
        coords = [at(x, y) for x, y in shown]
        if not coords:
            continue
        # each point's values in its tooltip; past 12 points the markers are invisible hover targets
        tips = [f"{tip}: {escape(x_label)} {_value(x)}, {escape(y_label)} {_value(y)}" for x, y in shown]
        if ln.marks_only:
            for p, text in zip(coords, tips):
                x, y = (float(v) for v in p.split(","))
                out.append(f'<path d="M{x - 5:.1f},{y - 5:.1f}l10,10M{x - 5:.1f},{y + 5:.1f}l10,-10" stroke="{c}" '
                           f'stroke-width="2.4"><title>{text}</title></path>')
            continue
        style = f' stroke-dasharray="{dash(ln.index)}"' if dash(ln.index) else ""
        out.append(f'<polyline points="{" ".join(coords)}" fill="none" stroke="{c}" stroke-width="2.2"{style}>'
                   f"<title>{tip}</title></polyline>")
        marker = f'r="3" fill="{c}"' if len(coords) <= 12 else 'r="3" fill="transparent"'
        out += [f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" {marker}><title>{text}</title></circle>'
                for p, text in zip(coords, tips)]
    out.append("</svg>")
    return "\n".join(out)
