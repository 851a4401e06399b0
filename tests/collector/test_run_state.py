"""Run state is first-class: complete, interrupted (with what was kept), aborted (with the reason) and
incomplete (records the agent made that were never stored), stored with the run's end event and shown
by `runs list` and at the top of every report in every format."""

from __future__ import annotations

import csv
import html
import io
import json

import pytest

from siliconbench.collector.lifecycle import lifecycle
from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.rollups import Selection, list_runs
from tests.collector import load_modes as lm

NO_COST = Options(cost=False)
CTRL_C = "stopped by the user or a signal during step 3; 2 of 10 steps finished, 16 request records kept"
WARMUP = "the target refused all 2 warm-up requests; the first: HTTP 404 model not found; 0 of 10 steps finished"


def test_a_run_that_ran_to_its_end_is_complete(store, unique_id):
    run_id = f"ok-{unique_id}"
    lm.store_run(store, run_id, f"ok-{unique_id}", "K", detail="10 of 10 steps finished, 160 request records kept")
    life = lifecycle(store, run_id)
    assert (life.state, life.finished) == ("complete", True)
    assert build_report(store, Selection(runs=(run_id,)), NO_COST).unfinished == {}


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_an_interrupted_run_says_so_with_what_was_kept_and_which_step_is_partial(store, unique_id, fmt):
    run_id = f"int-{unique_id}"
    # two steps finished; the third (poisson 8 req/s, uncapped) was cut: its requests are stored, its StepEvent
    # never came, so all its requests say is "concurrency 0"
    lm.store_run(store, run_id, f"i-{unique_id}", "I", steps=3, drop_step_event=2, outcome="interrupted",
                 detail=CTRL_C)
    report = build_report(store, Selection(runs=(run_id,)), NO_COST)
    assert report.unfinished == {run_id: "interrupted"} and not report.publishable
    text = RENDERERS[fmt].report(report)
    text = html.unescape(text) if fmt == "html" else text
    if fmt == "csv":
        assert {r["run_state"] for r in csv.DictReader(io.StringIO(text))} == {f"interrupted ({CTRL_C})"}
        assert {r["flags"] for r in csv.DictReader(io.StringIO(text)) if r["load"] == "open loop (rate not recorded)"} == {
            "partial step: 1 of 1 step(s) have no end record (the run stopped inside them): their figures cover "
            "only the requests stored"}
    elif fmt == "json":
        doc = json.loads(text)
        assert doc["run_states"][run_id] == {"state": "interrupted", "detail": CTRL_C}
        assert doc["unfinished"] == {run_id: "interrupted"}
    else:
        assert f"Run state: {run_id} interrupted ({CTRL_C})" in text
        assert f"UNFINISHED run — {run_id} (interrupted)" in text and "partial step" in text


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_a_run_whose_warm_up_was_refused_is_aborted_with_the_reason(store, unique_id, fmt):
    run_id = f"abort-{unique_id}"
    lm.store_run(store, run_id, f"a-{unique_id}", "A", steps=0, outcome="aborted", detail=WARMUP)
    report = build_report(store, Selection(runs=(run_id,)), NO_COST)
    text = RENDERERS[fmt].report(report)
    text = html.unescape(text) if fmt == "html" else text
    if fmt == "json":
        assert json.loads(text)["run_states"][run_id] == {"state": "aborted", "detail": WARMUP}
    elif fmt != "csv":   # no sweep point, so no CSV row: the CSV is its header alone
        assert f"Run state: {run_id} aborted ({WARMUP})" in text and "NOT publishable as is" in text
    else:
        assert text.count("\n") == 1


def test_a_run_with_records_never_stored_is_incomplete(store, unique_id):
    run_id = f"lost-{unique_id}"
    lm.store_run(store, run_id, f"l-{unique_id}", "L", steps=2, undelivered=3)
    life = lifecycle(store, run_id)
    assert life.state == "incomplete" and life.detail.startswith("12 of 15 request records stored")
    assert build_report(store, Selection(runs=(run_id,)), NO_COST).unfinished == {run_id: "incomplete"}


def test_runs_list_shows_each_runs_state(store, unique_id):
    run_id = f"listed-{unique_id}"
    lm.store_run(store, run_id, f"ls-{unique_id}", "LS", steps=3, outcome="interrupted", detail=CTRL_C)
    [row] = [r for r in list_runs(store) if r[0] == run_id]
    assert row[-1] == f"interrupted ({CTRL_C})"
