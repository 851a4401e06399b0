"""Reasoning, answers, tool calls and model mixes in the store: collector/formulas.py's per-request figures
by kind through the views of collector/answer_views.py, with the truth known from the rows."""

from __future__ import annotations

import pytest

from siliconbench.collector.answers import Answers, load_answers
from siliconbench.collector.errors import InvalidBatch
from siliconbench.collector.ingest import tables_of
from siliconbench.collector.rollups import Selection, Slo, load_figures, parse_slo, select_series
from siliconbench.core.plan import plan_from_mapping
from siliconbench.core.wire import pb
from tests.collector import rows

R, A, T = 1, 0, 2  # chunk kinds: reasoning, answer, tool call


def answers(store, run_id: str, *requests: list) -> Answers:
    store.insert("runs", [rows.run(run_id, "n1")], f"r/{run_id}")
    store.insert("requests", list(requests), run_id)
    return load_answers(store, select_series(store, Selection(runs=(run_id,))))


def test_time_to_first_answer_follows_the_reasoning_and_each_kind_has_its_own_itl(store, unique_id):
    # reasoning at 10, 20, 30 ms, then the answer at 130 and 135 ms
    found = answers(store, unique_id, rows.request(unique_id, "n1", 0, ttft_ms=10, gaps_ms=(10, 10, 100, 5),
                                                   kinds=(R, R, R, A, A)))
    [row] = found.steps
    assert row.ttft_ms.p50 == 10 and row.ttfa_ms.p50 == 130
    assert (row.reasoning_tokens, row.reasoning_chunks, row.answer_chunks, row.usage_tokens) == (3, 3, 2, 5)
    assert row.reasoning_ms.p50 == 20                     # first -> last reasoning chunk
    assert (row.reasoning_itl_ms.p99, row.answer_itl_ms.p99) == (10, 5)  # the 100 ms switch is in neither


def test_a_row_without_kinds_is_all_answer(store, unique_id):
    [row] = answers(store, unique_id, rows.request(unique_id, "n1", 0, ttft_ms=40, gaps_ms=(10, 20))).steps
    assert row.ttfa_ms.p50 == row.ttft_ms.p50 == 40
    assert (row.reasoning_chunks, row.answer_chunks, row.answer_itl_ms.p99) == (0, 3, 20)
    assert (row.reasoning_ms, row.reasoning_itl_ms, row.tool_call_ms) == (None, None, None)


def test_reasoning_that_was_not_streamed_is_recognised_by_its_first_chunk(store, unique_id):
    silent = rows.request(unique_id, "n1", 0, ttft_ms=8000, gaps_ms=(10,), tokens=(401, 1))
    coalesced = rows.request(unique_id, "n1", 1, ttft_ms=50, gaps_ms=(10,), tokens=(4, 4))  # a multi-token chunk
    [row] = answers(store, unique_id, silent, coalesced).steps
    assert row.silent_reasoning == 1
    assert (row.usage_tokens, row.counted_chunks) == (410, 4)  # usage includes the hidden reasoning


def test_a_tool_call_turn_ends_at_its_last_tool_call_chunk(store, unique_id):
    call = rows.request(unique_id, "n1", 0, ttft_ms=30, gaps_ms=(10, 10), kinds=(T, T, T), tool_calls=2,
                        tool_calls_invalid=1)
    [row] = answers(store, unique_id, call).steps
    assert (row.tool_calls, row.tool_calls_invalid, row.tool_call_ms.p50) == (2, 1, 50)
    assert (row.answered, row.ttfa_ms) == (0, None)


def test_figures_split_by_model_and_each_models_first_request_is_apart(store, unique_id):
    found = answers(store, unique_id,
                    rows.request(unique_id, "n1", 0, start_s=0, ttft_ms=900, model="lora-a"),
                    rows.request(unique_id, "n1", 1, start_s=1, ttft_ms=40, model="lora-a"),
                    rows.request(unique_id, "n1", 2, start_s=2, ttft_ms=60, model="lora-a"),
                    rows.request(unique_id, "n1", 3, start_s=0.5, ttft_ms=30, model="base"))
    assert [(r.model, r.requests, r.ttft_ms.p99) for r in found.steps] == [("base", 1, 30), ("lora-a", 3, 900)]
    first = {f.model: f for f in found.first_requests}
    assert (first["lora-a"].first_ttft_ms, first["lora-a"].warm_requests, first["lora-a"].warm_ttft_p50_ms) == \
        (900, 2, 60)
    assert (first["base"].warm_requests, first["base"].warm_ttft_p50_ms) == (0, None)
    assert first["lora-a"].first_request_id == f"{unique_id}/0/0"


@pytest.mark.parametrize(("kinds", "rule"), [((A, A), "one per chunk offset"), ((A, 3, A), "is not 0")])
def test_ingest_refuses_chunk_kinds_that_do_not_describe_the_chunks(kinds, rule):
    record = pb.RequestRecord(run_id="r", request_id="r/0/0", start_unix_ns=1_700_000_000 * 10**9, ttft_ns=10,
                              e2e_ns=40, chunk_offset_ns=[10, 20, 30], chunk_tokens=[1, 1, 1], chunk_kinds=kinds)
    with pytest.raises(InvalidBatch, match=rule):
        tables_of(pb.Batch(batch_id="b", seq=1, requests=[record]), "agent")


def test_goodput_binds_on_time_to_first_answer_and_a_request_that_never_answered_misses_it(store, unique_id):
    store.insert("runs", [rows.run(unique_id, "n1")], f"r/{unique_id}")
    store.insert("requests", [
        rows.request(unique_id, "n1", 0, ttft_ms=10, gaps_ms=(10, 10), kinds=(R, R, A)),      # answers at 30 ms
        rows.request(unique_id, "n1", 1, ttft_ms=10, gaps_ms=(10, 900), kinds=(R, R, A)),     # answers at 920 ms
        rows.request(unique_id, "n1", 2, ttft_ms=10, gaps_ms=(10, 10), kinds=(R, R, R)),      # never answers
    ], unique_id)
    series = select_series(store, Selection(runs=(unique_id,)))
    [step] = load_figures(store, series, parse_slo(["ttfa_ms=500"])).steps
    assert step.good_requests == 1
    assert load_figures(store, series, Slo()).steps[0].good_requests == 3
    assert "TTFA ≤ 500 ms" in parse_slo(["ttfa_ms=500"]).describe()


def test_a_plan_stores_a_time_to_first_answer_slo():
    assert plan_from_mapping({"slo": {"ttfa_ms": 2000}}, "plan").slo == {"ttfa_ms": 2000.0}
