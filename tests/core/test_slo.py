"""The SLO vocabulary of `search --slo`: keys, limits, and each request's samples."""

from __future__ import annotations

import pytest

from siliconbench.core.errors import ConfigError, ExitCode
from siliconbench.core.plan import Plan, parse_slo
from siliconbench.core.slo import GOODPUT_KEYS, METRICS, PERCENTILES, parse_goodput_slo, parse_slos, slo_keys
from siliconbench.core.wire import pb


def test_latency_percentiles_and_the_error_rate_parse_in_order():
    slos = parse_slos("ttft_p99_ms<=500, itl_p50_ms <= 12.5,error_rate<=0.005")
    assert [(s.key, s.metric, s.q, s.limit) for s in slos] == [
        ("ttft_p99_ms", "ttft", 0.99, 500.0), ("itl_p50_ms", "itl", 0.5, 12.5), ("error_rate", "error_rate", 0.0, 0.005)]
    assert [s.label for s in slos] == ["TTFT p99", "ITL p50", "error rate"]


def test_every_metric_at_every_percentile_is_a_key():
    assert len(slo_keys()) == len(METRICS) * len(PERCENTILES) + 1
    assert all(parse_slos(f"{key}<=0.5") for key in slo_keys())


@pytest.mark.parametrize("text,words", [
    ("ttft_p98_ms<=500", "unknown SLO 'ttft_p98_ms'"),
    ("latency<=5", "unknown SLO 'latency'"),
    ("ttft_p99_ms<=0", "must be a number of milliseconds > 0, got '0'"),
    ("ttft_p99_ms<=-3", "got '-3'"),
    ("ttft_p99_ms<=nan", "got 'nan'"),
    ("error_rate<=1.5", "must be a share in (0, 1)"),
    ("ttft_p99_ms=500", "write KEY<=LIMIT"),
    ("ttft_p99_ms<=5,ttft_p99_ms<=6", "ttft_p99_ms is given twice"),
    ("", "give at least one SLO"),
])
def test_bad_slos_are_one_line_naming_the_item_and_exit_2(text, words):
    with pytest.raises(ConfigError) as caught:
        parse_slos(text)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_a_request_gives_the_samples_the_collector_computes():
    record = pb.RequestRecord(ttft_ns=40_000_000, e2e_ns=100_000_000, output_tokens=4,
                              chunk_offset_ns=[40_000_000, 60_000_000, 80_000_000, 100_000_000])
    failed = pb.RequestRecord(ttft_ns=1_000_000, e2e_ns=2_000_000, output_tokens=2, error_class="http_500")
    ttft, itl, tpot, e2e = (parse_slos(f"{m}_p50_ms<=1")[0] for m in ("ttft", "itl", "tpot", "e2e"))
    assert ttft.samples([record, failed]) == [40.0]
    assert itl.samples([record]) == [20.0, 20.0, 20.0]
    assert tpot.samples([record]) == [20.0]
    assert e2e.samples([record]) == [100.0]


def test_time_to_first_answer_is_the_first_answer_chunk_and_a_stream_that_never_answered_misses_it():
    ttfa = parse_slos("ttfa_p99_ms<=500")[0]
    thought = pb.RequestRecord(ttft_ns=50_000_000, first_reasoning_ns=50_000_000, first_answer_ns=800_000_000,
                               chunk_offset_ns=[50_000_000, 800_000_000], chunk_kinds=[1, 0])
    plain = pb.RequestRecord(ttft_ns=40_000_000, chunk_offset_ns=[40_000_000])  # an agent that stored no kinds
    silent = pb.RequestRecord(ttft_ns=30_000_000, first_reasoning_ns=30_000_000, chunk_offset_ns=[30_000_000],
                              chunk_kinds=[1])
    assert (ttfa.label, ttfa.samples([thought, plain])) == ("TTFA p99", [800.0, 40.0])
    assert ttfa.samples([silent]) == [float("inf")]


def test_the_agent_and_the_report_take_the_same_goodput_keys():
    """One vocabulary: every key the report's --slo takes, the agent's run --slo and a plan's slo: take too."""
    assert GOODPUT_KEYS == ("ttft_ms", "ttfa_ms", "itl_ms", "tpot_ms", "e2e_ms")
    text = ",".join(f"{key}={i + 1}" for i, key in enumerate(GOODPUT_KEYS))
    assert parse_slo(text) == parse_goodput_slo([text]) == {key: float(i + 1) for i, key in enumerate(GOODPUT_KEYS)}
    assert Plan(slo=parse_slo(text)).slo == parse_slo(text)
