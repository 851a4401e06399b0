"""The per-step views, each a SELECT with a `where` over (run_id, agent_id, step) applied to every table it
reads: the views (collector/views.py) are these with `where` = "1", and a report runs them with its runs'
filter (`RUNS_WHERE`), so what it reads follows what it shows, not what the store holds (ClickHouse does not
push a filter on a view's output down into its joined subqueries).

  step_rollups   per step: means, counts and throughput from the digests (request_digests)
  step_kept      the kept results (collector/kept.py) that still hold: computed from as many rows as the
                 step's digest counts
  step_figures   every step's figures (kept_steps' columns but the distribution states): kept where they
                 hold, else computed from the step's rows now; `kept` says which
  step_spread    the distribution states per step, kept or computed the same way
  step_results   step_rollups + step_figures + goodput under the SLO asked + the server's figures + the
                 load as the agent stated it (collector/views.py documents each figure)
"""

from __future__ import annotations

from dataclasses import dataclass

from siliconbench.collector.load_view import DISPATCHED, STATED, stated_select
from siliconbench.collector.schema import KEPT_STEPS
from siliconbench.collector.server_views import COLUMNS as SERVER_COLUMNS, server_select
from siliconbench.collector.step_sql import (ROLLUP_COLUMNS, SPREAD_STATES, goodput_select, no_slo, rollups_over,
                                               steps_select)
from siliconbench.core.slo import GOODPUT_KEYS

ALL = "1"
RUNS_WHERE = "run_id IN {runs:Array(String)}"  # a report's: the runs it shows
SLO_PARAMS = ("ttft_ms = {ttft_ms:Float64}, ttfa_ms = {ttfa_ms:Float64}, itl_ms = {itl_ms:Float64}, "
              "tpot_ms = {tpot_ms:Float64}, e2e_ms = {e2e_ms:Float64}")


def rollups_select(where: str, kept: bool = False) -> str:
    """Per step of `where`: means, counts and throughput from the digests; `kept`: as kept with the steps'
    results (a reader that found every step kept, Need.compute False)."""
    if kept:
        return f"SELECT run_id, agent_id, step, {', '.join(ROLLUP_COLUMNS)} FROM {{db}}.kept_steps FINAL WHERE {where}"
    return rollups_over(f"(SELECT * FROM {{db}}.request_digests FINAL WHERE {where})")


def digested(where: str) -> str:
    """Per step of `where`: the requests its digest counts."""
    return (f"SELECT run_id, agent_id, step, sum(requests) AS digested FROM {{db}}.request_digests FINAL "
            f"WHERE {where} GROUP BY run_id, agent_id, step")


def kept_select(table: str, where: str, checked: bool = False) -> str:
    """The rows of a kept table (kept_steps, kept_answers) that still hold: computed from as many rows as the
    step's digest counts. `checked`: the reader found every step of `where` held (Need), so the rows as they are."""
    if checked:
        return f"SELECT * FROM {{db}}.{table} FINAL WHERE {where}"
    return f"""SELECT k.* FROM (SELECT * FROM {{db}}.{table} FINAL WHERE {where}) AS k
    INNER JOIN ({digested(where)}) AS d
        ON k.run_id = d.run_id AND k.agent_id = d.agent_id AND k.step = d.step AND k.step_rows = d.digested"""


def not_kept_rows(kept: str, where: str) -> str:
    """The request rows of the steps (of `where`) that have no row in `kept` (a kept_select): to compute now."""
    return f"""(SELECT * FROM {{db}}.requests WHERE {where} AND (run_id, agent_id, step) IN (
    SELECT run_id, agent_id, step FROM {{db}}.request_digests
    WHERE {where} AND (run_id, agent_id, step) NOT IN (SELECT run_id, agent_id, step FROM ({kept}))))"""


FIGURE_COLUMNS = ", ".join(c for c in KEPT_STEPS.names if c not in SPREAD_STATES)
_SPREAD_COLUMNS = ", ".join(("run_id", "agent_id", "step", "concurrency", *SPREAD_STATES))


def figures_select(where: str, compute: bool = True) -> str:
    """Every step's figures: kept where they hold, else computed from its rows (goodput under the bound SLO);
    `compute` False: the kept ones only (a reader that found every step kept: Need.compute)."""
    kept = kept_select("kept_steps", where, checked=not compute)
    return f"SELECT {FIGURE_COLUMNS}, true AS kept FROM ({kept})" + (f"""
UNION ALL
SELECT {FIGURE_COLUMNS}, false AS kept FROM ({steps_select(not_kept_rows(kept, where))})""" if compute else "")


def spread_select(where: str, compute: bool = True) -> str:
    """The distribution states per step with its concurrency, kept or computed (reports/spread.py merges a
    point's)."""
    kept = kept_select("kept_steps", where, checked=not compute)
    return f"SELECT {_SPREAD_COLUMNS} FROM ({kept})" + (f"""
UNION ALL
SELECT {_SPREAD_COLUMNS} FROM ({no_slo(steps_select(not_kept_rows(kept, where)))})""" if compute else "")


# Goodput of the kept steps whose run's SLO is not the one asked: from their rows.
SLO_ASKED = " AND ".join(f"slo_{key} = {{{key}:Float64}}" for key in GOODPUT_KEYS)


def _goodput_elsewhere(where: str) -> str:
    kept = kept_select("kept_steps", where)
    return goodput_select(f"(SELECT * FROM {{db}}.requests WHERE {where} AND (run_id, agent_id, step) IN "
                          f"(SELECT run_id, agent_id, step FROM ({kept}) WHERE NOT ({SLO_ASKED})))")


@dataclass(frozen=True, slots=True)
class Need:
    """What a reader's steps need beyond their kept results (collector/need.py finds it in one query): steps to
    compute from their rows (not kept, or kept before rows came), kept steps whose goodput must be counted from
    the rows (the SLO asked is not the run's own), nodes to compute. All True: the views' general form."""

    compute: bool = True
    goodput: bool = True
    compute_answers: bool = True
    compute_models: bool = True   # nodes whose models' first requests are not kept as their rows are
    compute_devices: bool = True  # nodes whose device and node figures are not kept as their samples are
    sessions: bool = True         # some step has requests in sessions (or is not kept: it may)
    not_kept: int = 0


_STEP_COLUMNS = ROLLUP_COLUMNS
_PERCENTILE_COLUMNS = ("ttft_ms", "itl_ms", "itl_token_ms", "tpot_ms", "e2e_ms")
STEADY_COLUMNS = ("full_concurrency_share", "steady_s", "steady_output_tps")  # closed loop only (NULL when open)
_CLOSED_ONLY = ",\n    ".join(f"if(ifNull(l.mode, 'closed') = 'closed', f.{c}, NULL) AS {c}" for c in STEADY_COLUMNS)
_GOOD = ("good_requests", "good_tokens_out", "good_tokens_total")


def results_select(where: str, need: Need | None = None) -> str:
    """step_results: the figures of every step (of `where`), goodput under the bound SLO; `need` (a reader's,
    collector/need.py): leave out the computations no step of `where` needs. Every step kept: one read of
    kept_steps gives both the digests' figures and the rows' (r and f are the same)."""
    need = need or Need()
    r = "r" if need.compute else "f"
    source = (f"({rollups_select(where)}) AS r\nLEFT JOIN ({figures_select(where)}) AS f USING (run_id, agent_id, step)"
              if need.compute else f"({figures_select(where, compute=False)}) AS f")
    return f"""
SELECT run_id, agent_id, step, {', '.join(f'{r}.{c} AS {c}' for c in _STEP_COLUMNS)},
    {', '.join(f'f.{c} AS {c}' for c in _PERCENTILE_COLUMNS)},
    {', '.join(f'if({SLO_ASKED.replace("slo_", "f.slo_")}, f.{c}, g.{c}) AS {c}' if need.goodput else f'f.{c} AS {c}'
               for c in _GOOD)},
    if({r}.wall_s > 0, good_requests / {r}.wall_s, 0) AS goodput_rps,
    if({r}.wall_s > 0, good_tokens_out / {r}.wall_s, 0) AS goodput_output_tps,
    if({r}.wall_s > 0, good_tokens_total / {r}.wall_s, 0) AS goodput_total_tps,
    s.has_server_tokens, {', '.join(f's.{c} AS {c}' for c in SERVER_COLUMNS)}, s.prefix_cache_hit_rate,
    ifNull(l.has_step, 0) AS has_step, ifNull(l.mode, if({r}.concurrency = 0, 'open', 'closed')) AS mode,
    ifNull(l.rate_rps, 0) AS rate_rps, l.agent_cpu_pct, l.loop_lag_p99_ms, ifNull(l.client_saturated, 0) AS client_saturated,
    {', '.join(f'l.{c} AS {c}' for c in STATED)},
    {', '.join(f'f.{c} AS {c}' for c in DISPATCHED)},
    {_CLOSED_ONLY},
    f.kept AS kept
FROM {source}
{f"LEFT JOIN ({_goodput_elsewhere(where)}) AS g USING (run_id, agent_id, step)" if need.goodput else ""}
LEFT JOIN ({server_select(where)}) AS s USING (run_id, agent_id, step)
LEFT JOIN ({stated_select(where)}) AS l USING (run_id, agent_id, step)
SETTINGS join_use_nulls = 1"""


def _view(name: str, select: str) -> str:
    return f"CREATE OR REPLACE VIEW {{db}}.{name} AS {select}"


STEP_VIEWS: dict[str, str] = {
    "step_rollups": _view("step_rollups", rollups_select(ALL)),
    "step_kept": _view("step_kept", kept_select("kept_steps", ALL)),
    "step_figures": _view("step_figures", figures_select(ALL)),
    "step_spread": _view("step_spread", spread_select(ALL)),
    "step_results": _view("step_results", results_select(ALL)),
}
