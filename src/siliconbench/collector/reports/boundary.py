"""Where a search ended, per series, for the report's key results: the largest load that met every SLO
(table `searches`, one row per node of a search run; `report --search ID` shows the probes)."""

from __future__ import annotations

from siliconbench.collector.rollups import Series
from siliconbench.collector.store import Store

BOUNDARY_SQL = """
SELECT run_id, agent_id, any(control), any(slo), any(found), any(boundary), any(verified), any(binding),
       any(output_tps), any(search_id)
FROM {db}.searches
WHERE has({runs:Array(String)}, run_id)
GROUP BY run_id, agent_id
"""


def load_boundaries(store: Store, series: list[Series]) -> dict[tuple[str, str], str]:
    """Series key -> its search's answer in words; series that ran no search are absent."""
    runs = sorted({s.run_id for s in series})
    out = {}
    for run_id, agent_id, control, slo, found, boundary, verified, binding, tps, search_id in store.query(
            BOUNDARY_SQL, {"runs": runs}).result_rows:
        if not found:
            text = f"no {control} met the SLOs ({slo}), not even the first probe"
        else:
            text = (f"{control} {boundary:g} is the largest within the SLOs ({slo}; "
                    f"{'verified' if verified else 'not verified'}, binding {binding or 'none'}, "
                    f"{tps:,.0f} output tok/s)")
        out[(run_id, agent_id)] = f"search {search_id}: {text}"
    return out
