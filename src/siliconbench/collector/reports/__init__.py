"""Reports: two models (`model.build_report` for runs and scenarios, `fleet.build_fleet_report` for one
fleet run) and one renderer per format, each rendering both, behind one small interface.

A `Renderer` is a format's pair of functions, `report(Report) -> str` and `fleet(FleetReport) -> str`,
both from the format's module (so they share its table and number formatting); `RENDERERS` maps a
format name to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from siliconbench.collector.errors import InvalidOption
from siliconbench.collector.reports import csv_report, html, json_report, markdown
from siliconbench.collector.reports.fleet import FleetReport, build_fleet_report
from siliconbench.collector.reports.model import build_report
from siliconbench.collector.reports.report import Options, Report


@dataclass(frozen=True, slots=True)
class Renderer:
    """One output format."""

    report: Callable[[Report], str]
    fleet: Callable[[FleetReport], str]


RENDERERS: dict[str, Renderer] = {
    "markdown": Renderer(markdown.render, markdown.render_fleet),
    "csv": Renderer(csv_report.render, csv_report.render_fleet),
    "json": Renderer(json_report.render, json_report.render_fleet),
    "html": Renderer(html.render, html.render_fleet),
}


def renderer(fmt: str) -> Renderer:
    """The renderer for FORMAT; InvalidOption listing the formats otherwise."""
    try:
        return RENDERERS[fmt.lower()]
    except KeyError:
        raise InvalidOption(f"--format {fmt!r} is not one of {', '.join(RENDERERS)}") from None


__all__ = ["RENDERERS", "FleetReport", "Options", "Renderer", "Report", "build_fleet_report", "build_report",
           "renderer"]
