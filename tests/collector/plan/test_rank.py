"""The plan from stored searches whose answer is known: nodes = ceil(load × (1 + headroom) / capacity),
fleet $/hour = nodes × price, cheapest fleet first; what was not measured is listed, never invented."""

from __future__ import annotations

import math
import uuid

import pytest

from siliconbench.collector.plan.capacity import poisson_lower
from siliconbench.collector.plan.demand import parse_load, workload_of_flags
from siliconbench.collector.plan.pricing import prices_from_file
from siliconbench.collector.plan.rank import PlanRequest, build_plan
from tests.collector.plan.stored import SLO, price_file, store_search


@pytest.fixture
def types():
    """Instance type names of this test's own (the session's store is shared)."""
    tag = uuid.uuid4().hex[:6]
    return lambda name: f"{name}-{tag}"


def plan(store, tmp_path, candidates, prices, *, load="40 req/s", slo=SLO, tokens=(512, 128), headroom=0.2,
         allow_other_workload=False):
    book = prices_from_file(price_file(tmp_path / "prices.csv", prices), "us-east-1", "on_demand")
    request = PlanRequest(parse_load(load), workload_of_flags(*tokens), slo, book, tuple(candidates), headroom,
                          allow_other_workload)
    return build_plan(store, request)


def test_the_cheapest_node_is_not_the_cheapest_fleet(store, tmp_path, types):
    small, big = types("small"), types("big")
    store_search(store, small, boundary=4.0)   # 48 / 4 = 12 nodes x $10 = $120/h
    big_id = store_search(store, big, boundary=16.0)  # 48 / 16 = 3 nodes x $30 = $90/h
    answer = plan(store, tmp_path, [small, big], {small: 10.0, big: 30.0})
    assert [(c.instance_type, c.nodes, c.usd_per_hour) for c in answer.choices] == [(big, 3, 90.0), (small, 12, 120.0)]
    best = answer.choices[0]
    assert best.evidence.search_id == big_id
    # 40 req/s x 128 output tokens = 5,120 tok/s; $90/h over it, and over the fleet's full 3 x 16 x 128 tok/s
    assert best.usd_per_million_at_load == pytest.approx(90 / (5120 * 3600) * 1e6)
    assert best.usd_per_million_at_capacity == pytest.approx(90 / (3 * 16 * 128 * 3600) * 1e6)
    assert answer.recommendation().startswith(f"3 x {big}, $90.00/h, $4.88 per 1M output tokens")


def test_a_load_in_output_tokens_per_second_is_planned_in_tokens(store, tmp_path, types):
    t = types("tok")
    store_search(store, t, boundary=10.0)  # 1,280 output tok/s per node
    [choice] = plan(store, tmp_path, [t], {t: 5.0}, load="5000 tok/s").choices
    assert choice.nodes == math.ceil(5000 * 1.2 / 1280)


def test_a_candidate_whose_lower_bound_adds_a_node(store, tmp_path, types):
    tight, loose = types("tight"), types("loose")
    store_search(store, tight, boundary=12.0, requests=400)   # 48 / 12 = 4 nodes; the bound 12 x 0.918: 5
    store_search(store, loose, boundary=10.0, requests=100_000)  # 48 / 10 = 4.8: 5 either way
    answer = plan(store, tmp_path, [tight, loose], {tight: 10.0, loose: 10.0})
    by_type = {c.instance_type: c for c in answer.choices}
    assert (by_type[tight].nodes, by_type[tight].nodes_low) == (4, 5)
    assert by_type[tight].capacity.rps_low == pytest.approx(12 * poisson_lower(400) / 400)
    assert (by_type[loose].nodes, by_type[loose].nodes_low) == (5, 5)
    assert answer.recommendation().endswith("5 if the capacity's lower bound holds")


def test_a_missing_price_is_a_row_note_and_the_row_goes_last(store, tmp_path, types):
    priced, unpriced = types("priced"), types("unpriced")
    store_search(store, priced, boundary=4.0)
    store_search(store, unpriced, boundary=40.0)
    answer = plan(store, tmp_path, [priced, unpriced], {priced: 10.0})
    assert [c.instance_type for c in answer.choices] == [priced, unpriced]
    last = answer.choices[-1]
    assert last.usd_per_hour is None and last.usd_per_million_at_load is None and last.nodes == 2
    assert any(f"no on_demand price for {unpriced} in us-east-1" in note for note in last.notes)


def test_another_workload_is_missing_with_the_search_that_would_measure_it(store, tmp_path, types):
    t = types("other")
    store_search(store, t, output_tokens=64)
    answer = plan(store, tmp_path, [t], {t: 10.0})
    assert answer.choices == ()
    [missing] = answer.missing
    assert "output tokens 64 vs 128" in "; ".join(missing.reasons)
    assert missing.command == (f"siliconbench-agent search --target http://VLLM:8000 --collector COLLECTOR:50051 "
                               f"--instance-type {t} --model m --control rate "
                               f"--slo 'ttft_p99_ms<=500,itl_p99_ms<=50' --input-tokens 512 --output-tokens 128")


def test_another_workload_is_borrowed_only_when_allowed_and_then_warned(store, tmp_path, types):
    t = types("borrow")
    sid = store_search(store, t, output_tokens=64)
    answer = plan(store, tmp_path, [t], {t: 10.0}, allow_other_workload=True)
    [choice] = answer.choices
    assert choice.borrowed == ("output tokens 64 vs 128",) and answer.missing == ()
    assert any("BORROWED" in w and sid in w for w in answer.warnings)
    assert answer.recommendation().endswith("(capacity BORROWED from another workload)")


def test_a_search_with_looser_or_fewer_slos_does_not_answer(store, tmp_path, types):
    loose, fewer, stricter = types("loose"), types("fewer"), types("stricter")
    store_search(store, loose, slo="ttft_p99_ms<=900,itl_p99_ms<=50")
    store_search(store, fewer, slo="ttft_p99_ms<=500", bounds=(250.0,))
    store_search(store, stricter, slo="ttft_p99_ms<=400,itl_p99_ms<=50,error_rate<=0.01", bounds=(250.0, 40.0, 0.0))
    answer = plan(store, tmp_path, [loose, fewer, stricter], {loose: 1.0, fewer: 1.0, stricter: 1.0})
    assert [c.instance_type for c in answer.choices] == [stricter]
    reasons = {m.instance_type: "; ".join(m.reasons) for m in answer.missing}
    assert "its ttft_p99_ms<=900 is looser than ttft_p99_ms<=500" in reasons[loose]
    assert "it did not test itl_p99_ms" in reasons[fewer]
    # headroom is against the SLO asked for: 1 - 250 / 500
    assert answer.choices[0].headroom == {"ttft_p99_ms": 0.5, "itl_p99_ms": pytest.approx(0.2)}


def test_a_concurrency_search_is_converted_by_little_s_law_and_a_rate_search_preferred(store, tmp_path, types):
    only_streams, both = types("streams"), types("both")
    store_search(store, only_streams, control="concurrency", boundary=32.0, e2e_s=4.0, requests=300)
    store_search(store, both, control="concurrency", boundary=64.0, e2e_s=2.0, requests=300, started_s=60)
    rate_id = store_search(store, both, control="rate", boundary=5.0)
    answer = plan(store, tmp_path, [only_streams, both], {only_streams: 1.0, both: 1.0})
    by_type = {c.instance_type: c for c in answer.choices}
    streams = by_type[only_streams].capacity
    assert streams.rps == pytest.approx(32 / 4.0) and "Little's law" in streams.how
    assert streams.tps == pytest.approx(8.0 * 128)  # the output tokens the probe's own requests carried
    assert by_type[both].evidence.search_id == rate_id and by_type[both].capacity.rps == 5.0


def test_the_newest_matching_search_answers(store, tmp_path, types):
    t = types("newest")
    store_search(store, t, boundary=4.0, started_s=0)
    newest = store_search(store, t, boundary=8.0, started_s=3600)
    [choice] = plan(store, tmp_path, [t], {t: 1.0}).choices
    assert choice.evidence.search_id == newest and choice.capacity.rps == 8.0


def test_a_candidate_never_searched_is_missing_and_one_with_no_load_within_slo_is_unmet(store, tmp_path, types):
    never, failing = types("never"), types("failing")
    sid = store_search(store, failing, found=False, simulated=True)
    answer = plan(store, tmp_path, [never, failing], {never: 1.0, failing: 1.0})
    assert answer.choices == ()
    assert [(m.instance_type, m.reasons) for m in answer.missing] == [(never, ("no search stored for this instance type",))]
    [unmet] = answer.unmet
    assert unmet.search_id == sid and unmet.simulated and "no load within the SLOs" in unmet.reason
    assert any("SIMULATED" in w and sid in w for w in answer.warnings)


def test_scenarios_of_one_instance_type_are_separate_candidates(store, tmp_path, types):
    t = types("scen")
    store_search(store, t, scenario="tp8", boundary=10.0)
    store_search(store, t, scenario="tp4x2", boundary=20.0)
    answer = plan(store, tmp_path, [t], {t: 10.0})
    assert [(c.scenario, c.nodes) for c in answer.choices] == [("tp4x2", 3), ("tp8", 5)]


def test_a_search_on_several_nodes_counts_its_weakest_node(store, tmp_path, types):
    t = types("fleet")
    sid = store_search(store, t, boundary=12.0, node="a")
    store_search(store, t, boundary=8.0, search_id=sid, node="b")
    [choice] = plan(store, tmp_path, [t], {t: 1.0}).choices
    assert choice.capacity.rps == 8.0 and choice.capacity.agent_id == f"{sid}-b" and choice.nodes == 6
    assert [n.agent_id for n in choice.evidence.nodes] == [f"{sid}-a", f"{sid}-b"]
