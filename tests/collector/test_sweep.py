"""Sweep points summarised in Python from the step rows a report read (collector/sweep.py) are the view
`sweep_results`' rows: same points, same order, each figure's median, lowest and highest repetition."""

from __future__ import annotations

import random

import pytest

from siliconbench.collector.sweep import median, sweep_rows
from tests.collector import rows
from tests.collector.test_kept import NO_SLO, same, step_results

SWEEP = ("SELECT * FROM {db}.sweep_results(ttft_ms = {ttft_ms:Float64}, ttfa_ms = {ttfa_ms:Float64}, "
         "itl_ms = {itl_ms:Float64}, tpot_ms = {tpot_ms:Float64}, e2e_ms = {e2e_ms:Float64}) "
         "WHERE run_id = {run:String} ORDER BY run_id, agent_id, steps[1]")


def test_median_interpolates_as_clickhouse_does():
    assert median([3, 1, 2]) == 2.0
    assert median([4, 1, 2, 3]) == 2.5
    assert median([None, 5]) == 5.0
    assert median([None]) is None


@pytest.mark.parametrize("seed", range(3))
def test_points_from_step_rows_are_the_views_rows(store, unique_id, seed):
    rng = random.Random(seed)
    agent = f"agent-{unique_id}"
    store.insert("runs", [rows.run(unique_id, agent)], f"{unique_id}/r")
    requests, steps = [], []
    for step in range(8):  # concurrency 1 and 4, up to four repetitions each (one step cut short: no steps row)
        concurrency, repetition = (1, 4)[step % 2], step // 2
        for i in range(rng.randint(3, 12)):
            gaps = [rng.uniform(1, 30) for _ in range(rng.randint(0, 4))]
            requests.append(rows.request(unique_id, agent, i, step=step, concurrency=concurrency,
                                         repetition=repetition, start_s=step * 10 + rng.uniform(0, 4),
                                         ttft_ms=rng.uniform(10, 300), gaps_ms=gaps,
                                         error="timeout" if rng.random() < 0.15 else ""))
        if step != 7:
            steps.append(rows.step(unique_id, agent, step, concurrency, repetition, step * 10, step * 10 + 9))
    store.insert("steps", steps, f"{unique_id}/s")
    store.insert("requests", requests, f"{unique_id}/q")

    view = store.query(SWEEP, {**NO_SLO, "run": unique_id})
    expected = [dict(zip(view.column_names, row)) for row in view.result_rows]
    got = sweep_rows(step_results(store, unique_id))
    assert [list(p) for p in got] == [list(p) for p in expected]  # the same columns, in order
    for mine, theirs in zip(got, expected):
        different = {k: (mine[k], theirs[k]) for k in theirs if not same(mine[k], theirs[k])}
        assert different == {}
