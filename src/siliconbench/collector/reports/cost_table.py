"""Table 5, cost per 1M tokens, declared as the other tables are (tables.py): one row per series, from
its price and the points of reports/cost.py."""

from __future__ import annotations

from dataclasses import dataclass

from siliconbench.collector.prices import FORMULA as COST_FORMULA
from siliconbench.collector.reports.cost import Cost, cost_figures
from siliconbench.collector.reports.picks import relative
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.table import REL, TEXT, TPS, USD, Declared, Table, cell


@dataclass(frozen=True, slots=True)
class Priced:
    """One row's source: a series' cost, its figures, and the baseline's $/1M output @ peak."""

    report: Report
    cost: Cost
    figures: dict[str, float | None]
    baseline_usd: float | None

    def vs(self) -> float | None:
        if not self.report.compared(self.cost.series):
            return None
        return relative(self.figures["usd_per_m_output_at_peak"], self.baseline_usd)


def _figure(name: str):
    return lambda p: p.figures[name]


COST = Declared("cost", "5. Cost per 1M tokens", (
    cell("Scenario", TEXT, lambda p: p.cost.series.label),
    cell("Instance", TEXT, lambda p: p.cost.series.instance_type),
    cell("USD/h", USD, _figure("usd_per_hour")),
    cell("peak output tok/s", TPS, _figure("peak_output_tps")),
    cell("$/1M output @ peak", USD, _figure("usd_per_m_output_at_peak")),
    cell("$/1M total @ peak", USD, _figure("usd_per_m_total_at_peak")),
    cell("goodput output tok/s", TPS, _figure("goodput_output_tps")),
    cell("$/1M output @ goodput", USD, _figure("usd_per_m_output_at_goodput")),
    cell("$/1M total @ goodput", USD, _figure("usd_per_m_total_at_goodput")),
    cell("vs baseline", REL, Priced.vs),
    cell("price row used", TEXT, lambda p: p.cost.price.describe() if p.cost.price else p.cost.note),
))


def cost_table(report: Report) -> Table:
    figures = {c.series.label: cost_figures(c) for c in report.costs}
    base = figures.get(report.baseline, {}).get("usd_per_m_output_at_peak")
    caption = (f"{COST_FORMULA}. @ peak: the sweep's highest median output (or total) tok/s; @ goodput: the "
               f"highest goodput under the SLOs ({report.slo.describe()}). vs baseline compares $/1M output "
               "@ peak. Prices are list prices with their date and source; refresh them before publishing.")
    return COST.build((Priced(report, c, figures[c.series.label], base) for c in report.costs), caption,
                      title=f"5. Cost per 1M tokens ({report.price_kind}, {report.region})")
