"""Small inline-SVG charts (bars and lines) for the HTML report: no scripts, no CDN, no fonts to fetch."""

from __future__ import annotations

import math

from siliconbench.collector.reports.escape import html as escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
W, H = 520, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 56


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _label(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:,.1f}k".replace(".0k", "k")
    return f"{v:,.3g}"


def _frame(title: str, y_max: float, y_label: str) -> list[str]:
    plot_h = H - TOP - BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="{escape(title)}">',
           f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<text x="14" y="{TOP + plot_h / 2}" font-size="11" transform="rotate(-90 14 {TOP + plot_h / 2})" '
           f'text-anchor="middle">{escape(y_label)}</text>']
    for i in range(5):
        v = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_label(v)}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{W - RIGHT}" y2="{TOP + plot_h}" stroke="#333"/>')
    return out


def bar_chart(title: str, labels: list[str], values: list[float | None], y_label: str) -> str:
    known = [v for v in values if v is not None and math.isfinite(v)]
    y_max = _nice_max(max(known, default=1.0))
    out = _frame(title, y_max, y_label)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / max(len(labels), 1)
    for i, (label, v) in enumerate(zip(labels, values)):
        x = LEFT + i * slot + slot * 0.15
        if v is not None and math.isfinite(v):
            h = plot_h * v / y_max
            out.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                       f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(label)}: {v:,.4g}</title></rect>')
            out.append(f'<text x="{x + slot * 0.35:.1f}" y="{TOP + plot_h - h - 4:.1f}" font-size="10" '
                       f'text-anchor="middle">{_label(v)}</text>')
        else:
            out.append(f'<text x="{x + slot * 0.35:.1f}" y="{TOP + plot_h - 4:.1f}" font-size="10" '
                       'text-anchor="middle">n/a</text>')
        out.append(f'<text x="{x + slot * 0.35:.1f}" y="{TOP + plot_h + 16:.1f}" font-size="11" '
                   f'text-anchor="middle">{escape(label[:18])}</text>')
    out.append("</svg>")
    return "\n".join(out)


def line_chart(title: str, lines: list[tuple[str, list[tuple[float, float]]]], x_label: str, y_label: str) -> str:
    xs = [x for _, pts in lines for x, _ in pts if math.isfinite(x)]
    ys = [y for _, pts in lines for _, y in pts if math.isfinite(y)]
    x_max, y_max = _nice_max(max(xs, default=1.0)), _nice_max(max(ys, default=1.0))
    out = _frame(title, y_max, y_label)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    for i in range(5):
        v = x_max * i / 4
        x = LEFT + plot_w * i / 4
        out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" font-size="10" text-anchor="middle">{_label(v)}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{H - 22}" font-size="11" text-anchor="middle">{escape(x_label)}</text>')
    for i, (name, pts) in enumerate(lines):
        color = PALETTE[i % len(PALETTE)]
        coords = [(LEFT + plot_w * x / x_max, TOP + plot_h - plot_h * y / y_max) for x, y in pts
                  if math.isfinite(x) and math.isfinite(y)]
        if not coords:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"/>')
        for x, y in coords:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>')
        lx = LEFT + 8 + (i % 5) * ((plot_w - 16) / 5)
        ly = H - 8 - 0 * (i // 5)
        out.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{lx + 14:.1f}" y="{ly}" font-size="11">{escape(name[:14])}</text>')
    out.append("</svg>")
    return "\n".join(out)
