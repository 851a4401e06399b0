"""What a probe step is judged on: a closed loop's steady part, the rate its requests completed at, and
the signs of a server over-saturated through it."""

from __future__ import annotations

import pytest

from siliconbench.agent.search.judge import OVER_SATURATED, judge
from siliconbench.agent.search.probe import (completion_rate, output_tps, over_saturation, send_rate, steady_part,
                                             steady_window)
from siliconbench.core.slo import parse_slos
from siliconbench.core.wire import pb

MS = 1_000_000


def request(start_ms: float, e2e_ms: float, ttft_ms: float = 10.0) -> pb.RequestRecord:
    return pb.RequestRecord(start_unix_ns=int(start_ms * MS), e2e_ns=int(e2e_ms * MS), ttft_ns=int(ttft_ms * MS),
                            output_tokens=2, chunk_offset_ns=[int(ttft_ms * MS), int(e2e_ms * MS)])


def closed_loop(concurrency: int, requests: int, e2e_ms: float) -> list[pb.RequestRecord]:
    """Each of `concurrency` streams sends its next request when the last ends, `requests` in all."""
    out, free = [], [0.0] * concurrency
    for i in range(requests):
        stream = i % concurrency
        out.append(request(free[stream], e2e_ms))
        free[stream] += e2e_ms
    return out


def test_the_steady_part_starts_once_every_stream_is_in_flight_and_ends_at_the_first_stream_left_alone():
    records = closed_loop(2, 8, 100.0)
    for i, r in enumerate(records):
        r.start_unix_ns += i * MS  # sends at 0, 1, 102, 103, 204, 205, 306, 307 ms, each 100 ms long
    steady = steady_part(records, 2)
    # from the second send (1 ms: both streams in flight) to the first end after the last send (406 ms:
    # from then on one stream has nothing left to send); the last request ends after it
    assert [r.start_unix_ns // MS for r in steady] == [1, 102, 103, 204, 205, 306]


def test_output_throughput_counts_the_tokens_that_arrived_while_every_stream_was_in_flight():
    # 4 streams, each request 100 ms with its 2 tokens at 10 and 100 ms: with all 4 in flight, 8 tokens
    # arrive every 100 ms, 80 tok/s; the ramp (streams starting 25 ms apart) and the drain are left out
    records = closed_loop(4, 40, 100.0)
    for i in range(4):
        for later in records[i::4]:
            later.start_unix_ns += i * 25 * MS
    window = steady_window(records, 4)
    assert window == (75 * MS, 1000 * MS)  # the 4th stream's first send; the first end after the last send
    assert output_tps(records, window) == pytest.approx(80.0)
    # the steady part's own requests alone, over their first send to last end, count too little: the
    # requests in flight at either edge of that span carry tokens too
    steady = steady_part(records, 4)
    span_s = (max(r.start_unix_ns + r.e2e_ns for r in steady) - min(r.start_unix_ns for r in steady)) / 1e9
    assert sum(r.output_tokens for r in steady) / span_s < 0.95 * 80.0  # 68 tokens in 925 ms


def test_a_step_no_larger_than_its_concurrency_has_no_steady_part():
    assert steady_part(closed_loop(4, 4, 100.0), 4) == []


def test_the_completion_rate_is_counted_between_the_first_and_the_last_end():
    records = [request(i * 100.0, 50.0) for i in range(11)]  # one every 100 ms
    assert completion_rate(records) == 10.0
    assert completion_rate(records[:1]) == 0.0


def test_ttft_rising_through_a_probe_while_requests_wait_is_over_saturation():
    records = [request(i * 10.0, 200.0 + i * 5, ttft_ms=10.0 + i * 5) for i in range(30)]
    reason = over_saturation(records, waiting=[0, 2, 5, 9, 14, 20])
    assert reason.startswith("server over-saturated: requests waiting grew from 5 to 20 and the median TTFT rose")
    verdict = judge(parse_slos("ttft_p99_ms<=10000"), records, over_saturated=reason)
    assert (verdict.name, verdict.reason) == (OVER_SATURATED, reason)


def test_a_rising_ttft_without_a_growing_queue_is_not_over_saturation_and_a_flat_one_never():
    rising = [request(i * 10.0, 200.0, ttft_ms=10.0 + i * 5) for i in range(30)]
    assert over_saturation(rising, waiting=[3, 3, 3, 3]) == ""
    flat = [request(i * 10.0, 200.0) for i in range(30)]
    assert over_saturation(flat, waiting=[0, 5, 10, 20]) == ""


def test_without_metrics_the_ttft_trend_alone_tells():
    rising = [request(i * 10.0, 200.0, ttft_ms=10.0 + i * 5) for i in range(30)]
    assert over_saturation(rising, waiting=[]).startswith("server over-saturated: the median TTFT rose from")


def test_a_rate_probe_whose_requests_completed_slower_than_offered_fails_with_both_rates():
    records = [request(i * 10.0, 20.0) for i in range(40)]
    verdict = judge(parse_slos("ttft_p50_ms<=100"), records, offered_rps=50.0, achieved_rps=40.0)
    assert (verdict.name, verdict.reason) == ("fail", "requests completed at 40/s of 50/s offered")
    assert judge(parse_slos("ttft_p50_ms<=100"), records, offered_rps=50.0, achieved_rps=49.0).passed


def test_a_rate_probe_offered_what_its_requests_were_sent_at():
    records = [request(i * 20.0, 50.0) for i in range(11)]  # sent one every 20 ms
    assert send_rate(records) == 50.0
