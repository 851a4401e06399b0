"""The plan in the format asked for: Markdown, CSV, JSON (render.py) or HTML (charts.py)."""

from __future__ import annotations

from siliconbench.collector.errors import InvalidOption
from siliconbench.collector.plan.charts import render_html
from siliconbench.collector.plan.rank import PlanAnswer
from siliconbench.collector.plan.render import render_csv, render_json, render_markdown

RENDERERS = {"markdown": render_markdown, "csv": render_csv, "json": render_json, "html": render_html}
FORMATS = tuple(RENDERERS)


def render_plan(answer: PlanAnswer, fmt: str) -> str:
    """The plan in `fmt`; InvalidOption naming the formats otherwise."""
    render = RENDERERS.get(fmt.lower())
    if render is None:
        raise InvalidOption(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    return render(answer)
