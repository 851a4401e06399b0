"""What a report's steps and nodes need beyond their kept results (collector/kept.py), found in one query, so that
a report whose every step and node is kept reads only kept rows: no union with computations that would compute
nothing, no validity join in every query (step_views.Need).

Per step: kept while its kept row was computed from as many rows as its digest counts (kept_steps,
kept_answers); per node: while its kept rows were computed from as many request rows (kept_models) and
device samples as it has now (kept_devices, kept_nodes and, written last, kept_timelines: its timeline row
stands for all three). Checked once per report: a batch stored while the
report reads is in the next report.
"""

from __future__ import annotations

from siliconbench.collector.device_views import counted_samples
from siliconbench.collector.step_views import SLO_ASKED, Need, digested
from siliconbench.collector.store import Store

_NODE_ROWS = "SELECT run_id, agent_id, sum(digested) AS run_rows FROM ({steps}) GROUP BY run_id, agent_id"

_NEED = f"""
WITH steps AS ({digested("{where}")})
SELECT
    (SELECT countIf(k.step_rows != d.digested) FROM steps AS d
     LEFT JOIN (SELECT run_id, agent_id, step, step_rows FROM {{db}}.kept_steps FINAL WHERE {{where}}) AS k
         USING (run_id, agent_id, step)) AS steps_not_kept,
    (SELECT countIf(NOT ({SLO_ASKED})) FROM {{db}}.kept_steps WHERE {{where}}) AS other_slo,  -- > 0 matters:
    (SELECT sum(session_requests) FROM {{db}}.kept_steps WHERE {{where}}) AS session_requests,  -- no FINAL
    (SELECT countIf(a.step_rows != d.digested) FROM steps AS d
     LEFT JOIN (SELECT run_id, agent_id, step, any(step_rows) AS step_rows FROM {{db}}.kept_answers FINAL
                WHERE {{where}} GROUP BY run_id, agent_id, step) AS a USING (run_id, agent_id, step)) AS answers_not_kept,
    (SELECT countIf(m.run_rows != c.run_rows) FROM ({_NODE_ROWS.format(steps="SELECT * FROM steps")}) AS c
     LEFT JOIN (SELECT run_id, agent_id, any(run_rows) AS run_rows FROM {{db}}.kept_models FINAL WHERE {{where}}
                GROUP BY run_id, agent_id) AS m USING (run_id, agent_id)) AS models_not_kept,
    (SELECT countIf(t.run_samples != c.run_samples) FROM ({counted_samples("{where}")}) AS c
     LEFT JOIN (SELECT run_id, agent_id, max(run_samples) AS run_samples FROM {{db}}.kept_timelines FINAL
                WHERE {{where}} GROUP BY run_id, agent_id) AS t USING (run_id, agent_id)) AS devices_not_kept
SETTINGS join_use_nulls = 0
"""


def need(store: Store, where: str, params: dict) -> Need:
    """What the steps and nodes of `where` need; `params` binds `where`'s parameters and the SLO asked."""
    steps, other_slo, sessions, answers, models, devices = store.query(
        _NEED.replace("{where}", where), params).result_rows[0]
    return Need(compute=steps > 0, goodput=other_slo > 0, compute_answers=answers > 0, compute_models=models > 0,
                compute_devices=devices > 0, sessions=steps > 0 or (sessions or 0) > 0, not_kept=int(steps))
