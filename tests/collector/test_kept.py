"""Step results kept (collector/kept.py): a step's figures are computed once its rows are complete, equal
to computing them from the rows, read by the views only while they hold (a late batch makes the step
computed again until it is kept again), and keeping is idempotent under keepers racing on one store."""

from __future__ import annotations

import csv
import io
import math
import random
import threading
from dataclasses import asdict

import pytest

from siliconbench.collector import kept
from siliconbench.collector.device_views import timeline_read
from siliconbench.collector.schema import RUNS
from siliconbench.collector.need import need as find_need
from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.reports.model import ALL_KEPT
from siliconbench.collector.rollups import Selection, Slo, load_figures, select_series
from siliconbench.collector.step_views import RUNS_WHERE, Need
from tests.collector import rows

NO_SLO = {"ttft_ms": math.inf, "ttfa_ms": math.inf, "itl_ms": math.inf, "tpot_ms": math.inf, "e2e_ms": math.inf}
STEP_RESULTS = ("SELECT * FROM {db}.step_results(ttft_ms = {ttft_ms:Float64}, ttfa_ms = {ttfa_ms:Float64}, "
                "itl_ms = {itl_ms:Float64}, tpot_ms = {tpot_ms:Float64}, e2e_ms = {e2e_ms:Float64}) "
                "WHERE run_id = {run:String} ORDER BY agent_id, step")


def step_results(store, run_id: str, slo: dict[str, float] = NO_SLO) -> list[dict]:
    result = store.query(STEP_RESULTS, {**slo, "run": run_id})
    return [dict(zip(result.column_names, row)) for row in result.result_rows]


def answers(store, run_id: str) -> list[tuple]:
    return store.query("SELECT * FROM {db}.step_answers WHERE run_id = {r:String}", {"r": run_id}).result_rows


def random_store(store, run_id: str, rng: random.Random, steps: int = 3) -> None:
    """A run of `steps` closed-loop steps with random latencies, chunks, token counts, errors and two models."""
    agent = f"agent-{run_id}"
    store.insert("runs", [rows.run(run_id, agent)], f"{run_id}/r")
    requests = []
    for step in range(steps):
        concurrency = rng.choice((1, 2, 4))
        for i in range(rng.randint(5, 40)):
            gaps = [rng.uniform(1, 40) for _ in range(rng.randint(0, 6))]
            requests.append(rows.request(run_id, agent, i, step=step, concurrency=concurrency,
                                         start_s=step * 10 + rng.uniform(0, 5), ttft_ms=rng.uniform(20, 400),
                                         gaps_ms=gaps, tokens=[rng.randint(1, 4) for _ in range(len(gaps) + 1)],
                                         error="timeout" if rng.random() < 0.1 else "",
                                         model=rng.choice(("base", "lora"))))
        store.insert("steps", [rows.step(run_id, agent, step, concurrency, 0, step * 10, step * 10 + 9)],
                     f"{run_id}/s/{step}")
    store.insert("requests", requests, f"{run_id}/q")


@pytest.mark.parametrize("seed", range(6))
def test_kept_results_equal_the_computation_from_the_rows(store, unique_id, seed):
    rng = random.Random(seed)
    random_store(store, unique_id, rng)
    slo = {**NO_SLO, "ttft_ms": rng.uniform(50, 300), "tpot_ms": rng.uniform(5, 30)}
    computed, computed_answers = step_results(store, unique_id, slo), answers(store, unique_id)
    assert {r["kept"] for r in computed} == {0}

    assert kept.keep_due(store, runs=[unique_id], steps=[]).steps == 3
    read = step_results(store, unique_id, slo)
    assert {r["kept"] for r in read} == {1}
    assert [{k: v for k, v in r.items() if k != "kept"} for r in read] == \
        [{k: v for k, v in r.items() if k != "kept"} for r in computed]
    assert answers(store, unique_id) == computed_answers


def test_goodput_is_kept_under_the_runs_own_slo_and_computed_for_another(store, unique_id):
    agent = f"agent-{unique_id}"
    run = rows.run(unique_id, agent)
    run[RUNS.names.index("config_json")] = '{"concurrency": [1], "slo": {"ttft_ms": 150}}'
    store.insert("runs", [run], f"{unique_id}/r")
    store.insert("steps", [rows.step(unique_id, agent, 0, 1, 0, 0, 9)], f"{unique_id}/s")
    store.insert("requests", [rows.request(unique_id, agent, i, start_s=i, ttft_ms=100 + 20 * i) for i in range(5)],
                 f"{unique_id}/q")
    kept.keep_due(store, [(unique_id, agent, 0)])
    stored = store.query("SELECT slo_ttft_ms, good_requests FROM {db}.kept_steps FINAL WHERE run_id = {r:String}",
                         {"r": unique_id}).result_rows
    assert stored == [(150.0, 3)]  # TTFT 100, 120, 140 within 150 ms
    assert step_results(store, unique_id, {**NO_SLO, "ttft_ms": 150})[0]["good_requests"] == 3
    assert step_results(store, unique_id, {**NO_SLO, "ttft_ms": 110})[0]["good_requests"] == 1  # from the rows


def test_a_step_is_due_only_once_over_and_complete(store, unique_id):
    agent = f"agent-{unique_id}"
    store.insert("runs", [rows.run(unique_id, agent)], f"{unique_id}/r")
    store.insert("requests", [rows.request(unique_id, agent, i, start_s=i) for i in range(4)], f"{unique_id}/q")
    key = (unique_id, agent, 0)
    assert kept.due(store, [key]) == []  # still running: no steps row, the run not ended
    store.insert("steps", [rows.step(unique_id, agent, 0, 1, 0, 0, 9)], f"{unique_id}/s")
    assert kept.due(store, [key]) == [key]
    kept.keep(store, [key])
    assert kept.due(store, [key]) == []


def test_a_late_batch_makes_the_step_computed_until_it_is_kept_again(store, unique_id):
    agent = f"agent-{unique_id}"
    store.insert("runs", [rows.run(unique_id, agent)], f"{unique_id}/r")
    store.insert("steps", [rows.step(unique_id, agent, 0, 1, 0, 0, 9)], f"{unique_id}/s")
    store.insert("requests", [rows.request(unique_id, agent, i, start_s=i) for i in range(4)], f"{unique_id}/q1")
    kept.keep_due(store, [(unique_id, agent, 0)])
    store.insert("requests", [rows.request(unique_id, agent, 10, start_s=5, ttft_ms=900.0)], f"{unique_id}/q2")

    late = step_results(store, unique_id)[0]
    assert (late["kept"], late["requests"], late["ttft_ms"][-1]) == (0, 5, 900.0)  # the stale row is not read
    assert kept.keep_due(store, [(unique_id, agent, 0)]).steps == 1
    again = step_results(store, unique_id)[0]
    assert (again["kept"], again["ttft_ms"]) == (1, late["ttft_ms"])


@pytest.mark.parametrize("fmt", ["markdown", "html", "json"])
def test_a_report_says_which_steps_it_read_kept_and_which_it_computed_now(store, unique_id, fmt):
    random_store(store, unique_id, random.Random(7))
    agent = f"agent-{unique_id}"
    kept.keep_due(store, [(unique_id, agent, 0), (unique_id, agent, 1)])

    def says() -> str:
        return RENDERERS[fmt].report(build_report(store, Selection(runs=(unique_id,)), Options(cost=False)))

    assert f"2 of 3 steps read from their kept results; computed from their rows now (not kept yet): " \
           f"{unique_id}/{agent} step 2" in says()
    kept.keep_due(store, [(unique_id, agent, 2)])
    assert "kept: all 3 steps read from their kept results" in says()


def test_the_csv_report_counts_each_points_steps_read_kept(store, unique_id):
    random_store(store, unique_id, random.Random(7))
    agent = f"agent-{unique_id}"

    def kept_of_steps() -> list[tuple[int, int]]:
        text = RENDERERS["csv"].report(build_report(store, Selection(runs=(unique_id,)), Options(cost=False)))
        return [tuple(map(int, r["steps_kept"].split("/"))) for r in csv.DictReader(io.StringIO(text))]

    assert sum(n for _, n in kept_of_steps()) == 3 and sum(k for k, _ in kept_of_steps()) == 0
    kept.keep_due(store, [(unique_id, agent, 0)])
    assert sum(k for k, _ in kept_of_steps()) == 1
    kept.keep_due(store, runs=[unique_id], steps=[])
    assert all(k == n for k, n in kept_of_steps())


def test_keepers_racing_on_one_store_leave_one_row_per_step(store, unique_id):
    random_store(store, unique_id, random.Random(7))
    keys = kept.due(store, runs=[unique_id], steps=[])
    errors: list[BaseException] = []

    def keeper() -> None:
        try:
            kept.keep(store, keys)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=keeper) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.query("SELECT count() FROM {db}.kept_steps FINAL WHERE run_id = {r:String}",
                       {"r": unique_id}).result_rows[0][0] == 3
    assert {r["kept"] for r in step_results(store, unique_id)} == {1}
    assert kept.due(store, runs=[unique_id], steps=[]) == []


def _plain(value):
    """NaN as None (NaN != NaN), lists and tuples through."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def same(a, b) -> bool:
    """Equal, floats to 12 significant digits (sums of floats taken in another order differ in their last
    bits), NaN equal to NaN and to None (a NULL), through lists, tuples and dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return math.isnan(a if b is None else b)
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def node_views(store, run_id: str) -> tuple[list, list, list]:
    def rows(view: str, order: str) -> list:
        return _plain(store.query(f"SELECT * FROM {{db}}.{view} WHERE run_id = {{r:String}} ORDER BY {order}",
                                  {"r": run_id}).result_rows)
    return (rows("device_rollups", "agent_id, step, source, device"), rows("node_rollups", "agent_id, step"),
            rows("model_first_requests", "agent_id, model"))


def ended_run_with_samples(store, run_id: str, rng: random.Random) -> str:
    random_store(store, run_id, rng)
    agent = f"agent-{run_id}"
    samples = [rows.sample(run_id, agent, t / 2, "nvml", str(gpu), metric, value(t))
               for t in range(-2, 62) for gpu in range(2)
               for metric, value in (("gpu_util_pct", lambda t: rng.uniform(0, 100)), ("power_w", lambda t: 300.0),
                                     ("energy_mj", lambda t: 150_000.0 * t))]
    store.insert("device_samples", samples, f"{run_id}/d")
    store.insert("runs", [rows.run(run_id, agent, phase="end")], f"{run_id}/e")
    return agent


def test_device_node_and_first_request_figures_are_kept_once_the_run_ended_and_equal_the_computation(store, unique_id):
    agent = ended_run_with_samples(store, unique_id, random.Random(3))
    computed = node_views(store, unique_id)
    assert all(computed)
    kept_now = kept.keep_due(store, runs=[unique_id], steps=[])
    assert kept_now.nodes == 1
    assert [kept.nodes_due(store, [unique_id]), kept.nodes_due(store, [unique_id], kept._MODELS_DUE)] == [[], []]
    assert node_views(store, unique_id) == computed
    timeline = {kept_rows: _plain(store.query(timeline_read(RUNS_WHERE, compute=not kept_rows),
                                              {"runs": [unique_id]}).result_rows) for kept_rows in (True, False)}
    assert timeline[True] == timeline[False] != []

    # A late sample inside a step: the kept rows no longer hold, the views compute the node again.
    store.insert("device_samples", [rows.sample(unique_id, agent, 5.25, "nvml", "0", "gpu_util_pct", 100.0)],
                 f"{unique_id}/late")
    assert kept.nodes_due(store, [unique_id]) == [(unique_id, agent)]
    late = node_views(store, unique_id)
    assert late[0] != computed[0]
    kept.keep_due(store, runs=[unique_id], steps=[])
    assert node_views(store, unique_id) == late


@pytest.mark.parametrize("seed", range(3))
def test_a_report_whose_steps_are_all_kept_reads_the_figures_it_would_compute(store, unique_id, seed):
    ended_run_with_samples(store, unique_id, random.Random(seed))
    series = select_series(store, Selection(runs=(unique_id,)))
    computed = load_figures(store, series, Slo(), Need())  # the views' general form: every step from its rows
    kept.keep_due(store, runs=[unique_id], steps=[])
    need = find_need(store, RUNS_WHERE, {"runs": [unique_id], **Slo().params()})
    assert (need.compute, need.compute_devices, need.compute_answers, need.compute_models) == (False,) * 4
    read = load_figures(store, series, Slo(), need)
    # exact but for the last bits of the means: a sum of floats in another order (collector/kept.py)
    assert same([{**asdict(s), "kept": None} for s in read.steps], [{**asdict(s), "kept": None} for s in computed.steps])
    assert same([p.as_row() for p in read.points], [p.as_row() for p in computed.points])
    assert read.nodes == computed.nodes and read.devices == computed.devices


def test_a_report_reads_a_wholly_kept_run_beside_its_check_and_reads_again_when_the_check_finds_more(store, unique_id):
    agent = ended_run_with_samples(store, unique_id, random.Random(5))
    series = select_series(store, Selection(runs=(unique_id,)))
    computed = load_figures(store, series, Slo(), Need())  # the views' general form: every step from its rows
    kept.keep_due(store, runs=[unique_id], steps=[])
    assert find_need(store, RUNS_WHERE, {"runs": [unique_id], **Slo().params()}) == ALL_KEPT
    read = build_report(store, Selection(runs=(unique_id,)), Options(cost=False)).figures  # the reads begun beside
    assert {s.kept for s in read.steps} == {1}
    assert same([{**asdict(s), "kept": None} for s in read.steps], [{**asdict(s), "kept": None} for s in computed.steps])
    assert read.nodes == computed.nodes and read.devices == computed.devices

    # A late request: the check finds step 1 to compute, and the report reads it from its rows.
    store.insert("requests", [rows.request(unique_id, agent, 999, step=1, start_s=12, ttft_ms=5000.0)], f"{unique_id}/late")
    late = build_report(store, Selection(runs=(unique_id,)), Options(cost=False)).figures
    step = {s.step: s for s in late.steps}
    assert (step[0].kept, step[1].kept, step[2].kept) == (1, 0, 1)
    assert step[1].requests == {s.step: s for s in read.steps}[1].requests + 1
    assert step[1].ttft_ms.p99 > 400 >= {s.step: s for s in read.steps}[1].ttft_ms.p99  # the late 5 s TTFT is in it
