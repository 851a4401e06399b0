"""Requests that returned fewer output tokens than they asked for (the context full, a stop string) are
counted per step and stated in every format, and the workload line says what was asked and what was served."""

from __future__ import annotations

import html

import pytest

from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.rollups import Selection
from tests.collector import load_modes as lm

NO_COST = Options(cost=False)
STATED = "16 output tokens asked, 7.0 served on average; 4 of 4 ended early"


@pytest.fixture
def early_run(store, unique_id) -> str:
    """One closed-loop step at concurrency 2: 4 requests, each asked for 16 tokens and returning 7."""
    run_id = f"early-{unique_id}"
    lm.store_run(store, run_id, f"e-{unique_id}", "E", steps=1, asked=16, output_tokens=16)
    return run_id


def test_each_step_counts_its_requests_that_ended_early(store, early_run):
    report = build_report(store, Selection(runs=(early_run,)), NO_COST)
    [step] = report.figures.steps
    assert (step.ended_early, step.tokens_asked) == (4, 16)
    [note] = [f for f in report.flags if f.check == "ended early"]
    assert note.severity == "note" and note.message.startswith(STATED)
    assert report.publishable   # served fewer than asked is stated, not a fault


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_every_format_states_what_was_asked_and_what_was_served(store, early_run, fmt):
    text = RENDERERS[fmt].report(build_report(store, Selection(runs=(early_run,)), NO_COST))
    assert STATED in (html.unescape(text) if fmt == "html" else text)


def test_the_html_workload_line_states_asked_and_served(store, early_run):
    report = build_report(store, Selection(runs=(early_run,)), NO_COST)
    assert report.spread.workloads[early_run].endswith(f"; {STATED}")


def test_requests_that_got_what_they_asked_for_are_not_flagged(store, unique_id):
    run_id = f"full-{unique_id}"
    lm.store_run(store, run_id, f"f-{unique_id}", "F", steps=1)
    report = build_report(store, Selection(runs=(run_id,)), NO_COST)
    assert [s.ended_early for s in report.figures.steps] == [0]
    assert not [f for f in report.flags if f.check == "ended early"]
