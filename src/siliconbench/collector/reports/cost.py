"""What each series costs: its price row (or why it has none) and $/1M tokens at the sweep's peak and at
its best goodput, as table 5 states them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from siliconbench.collector.errors import PriceMissing
from siliconbench.collector.figures import Figures, PointRow
from siliconbench.collector.prices import Price, price_for, usd_per_million
from siliconbench.collector.reports.picks import median, peak
from siliconbench.collector.rollups import Series
from siliconbench.collector.store import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Cost:
    series: Series
    price: Price | None
    peak: PointRow | None       # the sweep point of highest output tok/s
    goodput: PointRow | None    # the sweep point of highest goodput output tok/s
    note: str = ""


def load_costs(store: Store, series: list[Series], figures: Figures, region: str, price_kind: str) -> list[Cost]:
    """Each series' price and the points it is stated at; a series without an instance type or price
    gets a note saying what is missing, and every other series keeps its row."""
    out = []
    for s in series:
        points = figures.points_of(s)
        top, good = peak(points), peak(points, lambda f: f.goodput_output_tps)
        if not s.instance_type:
            out.append(Cost(s, None, top, good, "the node reported no instance type (run the agent with --instance-type)"))
            continue
        try:  # one unpriced type must not cost the reader every other row: its row says what is missing
            price = price_for(store, s.instance_type, region, price_kind)
        except PriceMissing as exc:
            log.warning("%s: %s", s.label, exc)
            out.append(Cost(s, None, top, good, f"no price: {exc}"))
            continue
        out.append(Cost(s, price, top, good))
    return out


def cost_figures(c: Cost) -> dict[str, float | None]:
    """USD/h, the peak and goodput throughputs, and $/1M output and total tokens at each."""
    hourly = c.price.usd_per_hour if c.price else None

    def per_m(tps: float | None) -> float | None:
        return usd_per_million(hourly, tps) if hourly else None

    top, good = median(c.peak), median(c.goodput)
    return {
        "usd_per_hour": hourly,
        "peak_output_tps": top.output_tps, "peak_total_tps": top.total_tps,
        "usd_per_m_output_at_peak": per_m(top.output_tps), "usd_per_m_total_at_peak": per_m(top.total_tps),
        "goodput_output_tps": good.goodput_output_tps,
        "goodput_total_tps": good.goodput_total_tps,
        "usd_per_m_output_at_goodput": per_m(good.goodput_output_tps),
        "usd_per_m_total_at_goodput": per_m(good.goodput_total_tps),
    }
