"""One unpriced instance type does not end a report: its cost row says which price is missing and how to add it."""

from __future__ import annotations

from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.rollups import Selection
from tests.collector import rows


def test_an_unpriced_instance_type_is_a_note_in_its_row_and_the_priced_row_keeps_its_cost(store, unique_id):
    runs = []
    for name, itype in (("A", "p5.48xlarge"), ("Z", "z9.mega")):
        agent, run_id = f"{name}-{unique_id}", f"{unique_id}-{name}"
        store.insert("nodes", [rows.node(agent, itype)], f"n/{agent}")
        store.insert("runs", [rows.run(run_id, agent, scenario=f"{name}{unique_id}")], f"r/{run_id}")
        store.insert("requests", [rows.request(run_id, agent, i, step=0, concurrency=1, start_s=i * 0.2)
                                  for i in range(4)], run_id)
        runs.append(run_id)
    report = build_report(store, Selection(runs=tuple(runs)), Options())
    cost = {row[0]: row for row in report.table("cost").rows}
    priced, unpriced = cost[f"A{unique_id}"], cost[f"Z{unique_id}"]
    assert priced[2] is not None and priced[4] is not None
    assert unpriced[2] is None and "no price" in unpriced[-1] and "'z9.mega'" in unpriced[-1]
    assert "prices import" in unpriced[-1]
    assert "z9.mega" in RENDERERS["markdown"].report(report)
