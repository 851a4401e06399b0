"""Formatting numbers for people (Markdown and HTML share it; CSV and JSON keep raw values)."""

from __future__ import annotations

import math

from siliconbench.collector.reports import table as kinds


def fmt(value, kind: str) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == kinds.TEXT or isinstance(value, str):
        return str(value)
    v = float(value)
    if kind == kinds.INT:
        return f"{int(v):,}"
    if kind == kinds.MS:
        return f"{v:,.1f}" if v >= 10 else f"{v:,.2f}"
    if kind in (kinds.TPS, kinds.RPS):
        return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"
    if kind == kinds.USD:
        return f"${v:,.2f}" if v >= 1 else f"${v:,.4f}"
    if kind == kinds.PCT:
        return f"{v:.0f}%"
    if kind == kinds.REL:
        return "baseline" if abs(v) < 5e-4 else f"{v * 100:+.0f}%"
    if kind == kinds.RATIO:
        return f"×{v:,.2f}"
    if kind in (kinds.JOULE, kinds.WATT):
        return f"{v:,.0f}" if v >= 100 else f"{v:,.3g}"
    if kind == kinds.GB:
        return f"{v:,.1f} GB"
    return f"{v:,.3g}"


def unit(kind: str) -> str:
    return {kinds.MS: " (ms)", kinds.TPS: "", kinds.RPS: "", kinds.JOULE: " (J)", kinds.WATT: " (W)"}.get(kind, "")
