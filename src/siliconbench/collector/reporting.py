"""`report` and `compare` as one function: report options in, rendered text out."""

from __future__ import annotations

from siliconbench.collector import digests
from siliconbench.collector.errors import InvalidOption
from siliconbench.collector.options import ReportOptions
from siliconbench.collector.store import Store


def render_report(options: ReportOptions) -> str:
    """The report on `options`' runs and scenarios (none: all) in `options.fmt`.

    Raises CollectorError for a bad format, SLO or selection, before or instead of any output."""
    from siliconbench.collector.reports import Options, build_report, renderer
    from siliconbench.collector.rollups import Selection, parse_slo

    if options.search is not None:
        return _search_report(options)
    render = renderer(options.fmt)
    report_options = Options(slo=parse_slo(list(options.slo)), baseline=options.baseline,
                             region=options.price_region, price_kind=options.price_kind, cost=options.cost,
                             allow_mixed_workloads=options.allow_mixed_workloads)
    store = Store.open_existing(options.store, options.password)
    digests.check(store, options.runs or None)  # figures come from digests: refuse ones a crash left short
    selection = Selection(runs=options.runs, scenarios=options.scenarios)
    return render.report(build_report(store, selection, report_options))


def _search_report(options: ReportOptions) -> str:
    from siliconbench.collector.reports.search import render_search
    from siliconbench.collector.searches import load_search

    if options.runs or options.scenarios:
        raise InvalidOption("--search reports one search: leave out --run and --scenario")
    store = Store.open(options.store, options.password)
    return render_search(options.search or "", load_search(store, options.search or ""), options.fmt)
