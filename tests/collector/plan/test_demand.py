"""The target load and its workload: a number and a unit, or the peak minute of a stored run."""

from __future__ import annotations

import uuid

import pytest

from siliconbench.collector.errors import InvalidOption, RunNotFound
from siliconbench.collector.plan.demand import load_of_run, parse_load, workload_of_flags, workload_of_run
from siliconbench.collector.schema import RUNS
from siliconbench.core.plan import Plan
from tests.collector import rows


@pytest.mark.parametrize("text, value, unit", [("40 req/s", 40.0, "req/s"), ("2.5rps", 2.5, "req/s"),
                                               ("5000 tok/s", 5000.0, "tok/s"), ("1e3 tokens/s", 1000.0, "tok/s")])
def test_a_load_is_a_number_and_a_unit(text, value, unit):
    load = parse_load(text)
    assert (load.value, load.unit) == (value, unit)


@pytest.mark.parametrize("text", ["40", "40 req/min", "-3 req/s", "0 tok/s", "lots"])
def test_a_load_without_a_known_unit_or_positive_number_is_refused(text):
    with pytest.raises(InvalidOption, match="--load"):
        parse_load(text)


def test_the_load_of_a_run_is_its_peak_minute_of_arrivals(store):
    run = f"peak-{uuid.uuid4().hex[:8]}"
    # minute 0: 60 arrivals; minute 1: 150; minute 2: 30
    starts = [i for i in range(60)] + [60 + i * 0.4 for i in range(150)] + [120 + i * 2 for i in range(30)]
    store.insert("requests", [rows.request(run, "a", i, start_s=s) for i, s in enumerate(starts)], run)
    load = load_of_run(store, run)
    assert (load.value, load.unit) == (150 / 60, "req/s") and "150 arrivals" in load.source


def test_a_run_with_no_requests_gives_no_load(store):
    with pytest.raises(RunNotFound, match="no requests of run 'nope'"):
        load_of_run(store, "nope")


def test_a_workload_of_a_run_compares_everything_its_requests_share(store):
    run = f"wl-{uuid.uuid4().hex[:8]}"
    row = dict(zip(RUNS.names, rows.run(run, "a")), config_json='{"input_tokens": 256, "output_tokens": 64, '
                                                               '"endpoint": "chat"}')
    store.insert("runs", [RUNS.row(**row)], run)
    workload = workload_of_run(store, run)
    assert workload.output_tokens == 64
    assert workload.differences(Plan(input_tokens=256, output_tokens=64, endpoint="chat")) == []
    assert workload.differences(Plan(input_tokens=256, output_tokens=64))[0] == "endpoint completions vs chat"
    assert workload_of_flags(256, 64).differences(Plan(input_tokens=256, output_tokens=64, endpoint="chat")) == []
    assert "--endpoint chat" in workload.search_flags()
