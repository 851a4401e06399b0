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
from siliconbench.core.slo import GOODPUT_KEYS

_NEED = f"""
SELECT countIf(k.step_rows != d.digested) AS steps_not_kept,
    countIf(k.step_rows = d.digested AND NOT ({SLO_ASKED.replace("slo_", "k.slo_")})) AS other_slo,
    sum(k.session_requests) AS session_requests,
    countIf(a.step_rows != d.digested) AS answers_not_kept,
    (SELECT countIf(m.run_rows != c.run_rows)
     FROM (SELECT run_id, agent_id, sum(requests) AS run_rows FROM {{db}}.request_digests FINAL WHERE {{where}}
           GROUP BY run_id, agent_id) AS c
     LEFT JOIN (SELECT run_id, agent_id, any(run_rows) AS run_rows FROM {{db}}.kept_models FINAL WHERE {{where}}
                GROUP BY run_id, agent_id) AS m USING (run_id, agent_id)) AS models_not_kept,
    (SELECT countIf(t.run_samples != c.run_samples) FROM ({counted_samples("{where}")}) AS c
     LEFT JOIN (SELECT run_id, agent_id, max(run_samples) AS run_samples FROM {{db}}.kept_timelines FINAL
                WHERE {{where}} GROUP BY run_id, agent_id) AS t USING (run_id, agent_id)) AS devices_not_kept
FROM ({digested("{where}")}) AS d
LEFT JOIN (SELECT run_id, agent_id, step, step_rows, session_requests, {", ".join(f"slo_{k}" for k in GOODPUT_KEYS)}
           FROM {{db}}.kept_steps FINAL WHERE {{where}}) AS k USING (run_id, agent_id, step)
LEFT JOIN (SELECT run_id, agent_id, step, any(step_rows) AS step_rows FROM {{db}}.kept_answers FINAL
           WHERE {{where}} GROUP BY run_id, agent_id, step) AS a USING (run_id, agent_id, step)
SETTINGS join_use_nulls = 0
"""


def need(store: Store, where: str, params: dict) -> Need:
    """What the steps and nodes of `where` need; `params` binds `where`'s parameters and the SLO asked."""
    steps, other_slo, sessions, answers, models, devices = store.query(
        _NEED.replace("{where}", where), params).result_rows[0]
    return Need(compute=steps > 0, goodput=other_slo > 0, compute_answers=answers > 0, compute_models=models > 0,
                compute_devices=devices > 0, sessions=steps > 0 or (sessions or 0) > 0, not_kept=int(steps))
