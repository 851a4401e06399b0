"""Formatting numbers for people (Markdown and HTML share it; CSV and JSON keep raw values)."""

from __future__ import annotations

import math

from siliconbench.collector.reports.table import GB, INT, JOULE, MS, PCT, RATIO, REL, RPS, TEXT, TPS, USD, WATT


def fmt(value, kind: str) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == TEXT or isinstance(value, str):
        return str(value)
    v = float(value)
    if kind == INT:
        return f"{int(v):,}"
    if kind == MS:
        return f"{v:,.1f}" if v >= 10 else f"{v:,.2f}"
    if kind in (TPS, RPS):
        return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"
    if kind == USD:
        return f"${v:,.2f}" if v >= 1 else f"${v:,.4f}"
    if kind == PCT:
        return f"{v:.0f}%"
    if kind == REL:
        return "baseline" if abs(v) < 5e-4 else f"{v * 100:+.0f}%"
    if kind == RATIO:
        return f"×{v:,.2f}"
    if kind in (JOULE, WATT):
        return f"{v:,.0f}" if v >= 100 else f"{v:,.3g}"
    if kind == GB:
        return f"{v:,.1f} GB"
    return f"{v:,.3g}"


def unit(kind: str) -> str:
    return {MS: " (ms)", TPS: "", RPS: "", JOULE: " (J)", WATT: " (W)"}.get(kind, "")
