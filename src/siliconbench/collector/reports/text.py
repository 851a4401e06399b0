"""Formatting numbers for people (Markdown and HTML share it; CSV and JSON keep raw values)."""

from __future__ import annotations

import math

from siliconbench.collector.reports import model as m


def fmt(value, kind: str) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == m.TEXT or isinstance(value, str):
        return str(value)
    v = float(value)
    if kind == m.INT:
        return f"{int(v):,}"
    if kind == m.MS:
        return f"{v:,.1f}" if v >= 10 else f"{v:,.2f}"
    if kind in (m.TPS, m.RPS):
        return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"
    if kind == m.USD:
        return f"${v:,.2f}" if v >= 1 else f"${v:,.4f}"
    if kind == m.PCT:
        return f"{v:.0f}%"
    if kind == m.REL:
        return "baseline" if abs(v) < 5e-4 else f"{v * 100:+.0f}%"
    if kind == m.RATIO:
        return f"×{v:,.2f}"
    if kind in (m.JOULE, m.WATT):
        return f"{v:,.0f}" if v >= 100 else f"{v:,.3g}"
    if kind == m.GB:
        return f"{v:,.1f} GB"
    return f"{v:,.3g}"


def unit(kind: str) -> str:
    return {m.MS: " (ms)", m.TPS: "", m.RPS: "", m.JOULE: " (J)", m.WATT: " (W)"}.get(kind, "")
