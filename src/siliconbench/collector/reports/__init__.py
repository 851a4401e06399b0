"""Reports: one model (`model.build_report`) and one renderer per format behind one small interface.

A renderer is a function `render(report) -> str`; `RENDERERS` maps a format name to it.
"""

from __future__ import annotations

from collections.abc import Callable

from siliconbench.collector.errors import InvalidOption
from siliconbench.collector.reports import csv_report, html, json_report, markdown
from siliconbench.collector.reports.model import Options, Report, build_report

Renderer = Callable[[Report], str]

RENDERERS: dict[str, Renderer] = {
    "markdown": markdown.render,
    "csv": csv_report.render,
    "json": json_report.render,
    "html": html.render,
}


def renderer(fmt: str) -> Renderer:
    """The renderer for FORMAT; InvalidOption listing the formats otherwise."""
    try:
        return RENDERERS[fmt.lower()]
    except KeyError:
        raise InvalidOption(f"--format {fmt!r} is not one of {', '.join(RENDERERS)}") from None


__all__ = ["RENDERERS", "Options", "Report", "build_report", "renderer"]
