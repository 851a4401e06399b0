"""The search method against a capacity knee known in closed form: bracket, bisect, verify; the answer
within the tolerance for concurrency and for rate, for every seed."""

from __future__ import annotations

import math

import pytest

from siliconbench.agent.errors import AgentSaturated
from siliconbench.agent.search.method import Measured, Search
from siliconbench.core.search import SearchOptions
from siliconbench.agent.sim import SimProfile
from siliconbench.core.cli import model_builder
from siliconbench.core.errors import ConfigError, ExitCode
from siliconbench.core.slo import parse_slos

from .knee import OUTPUT_TOKENS, KneeModel

# 32 slots of 20 + 3 x 10 = 50 ms each: 640 requests/s; past 32 streams each one more waits 1.56 ms more
KNEE = SimProfile(ttft_ms=20, itl_ms=10, slots=32)


def truth_concurrency(limit_ms: float, q: float, noise_ms: float = 2.0) -> int:
    """The largest concurrency whose true TTFT q-quantile (the closed form plus the noise's exponential
    quantile) is within `limit_ms`."""
    noise = -noise_ms * math.log(1 - q)
    return max(c for c in range(1, 1024) if KNEE.steady_ttft_ms(c, 16, OUTPUT_TOKENS) + noise <= limit_ms)


async def search(model: KneeModel, slo: str, **options) -> Search:
    found = Search(parse_slos(slo), SearchOptions(control=model.control, **options), model,
                   output_tokens=OUTPUT_TOKENS)
    await found.run()
    return found


@pytest.mark.parametrize("seed", range(8))
async def test_concurrency_search_finds_the_closed_form_boundary_within_tolerance(seed):
    truth = truth_concurrency(80.0, 0.99)  # 32 + (80 - 20 - 9.2 of noise) / 1.5625 streams: 64
    assert truth == 64
    found = await search(KneeModel(KNEE, "concurrency", seed), "ttft_p99_ms<=80", max=1024)
    answer = found.answer
    assert answer.verified
    assert abs(answer.boundary - truth) <= max(1, 0.05 * truth), (answer.boundary, truth)
    assert answer.binding().objective.key == "ttft_p99_ms"
    phases = [p.phase for p in answer.probes]
    assert phases[0] == "bracket" and "bisect" in phases and phases[-1] == "verify"
    assert [p.value for p in answer.probes if p.phase == "bracket"][:4] == [1, 2, 4, 8]  # doubling


@pytest.mark.parametrize("seed", range(8))
async def test_rate_search_finds_what_the_slots_finish_within_tolerance(seed):
    model = KneeModel(KNEE, "rate", seed)
    found = await search(model, "ttft_p99_ms<=80", start=10, max=5000)
    answer = found.answer
    assert answer.verified
    assert abs(answer.boundary - model.capacity_rps) <= 0.05 * model.capacity_rps, (answer.boundary, model.capacity_rps)


async def test_a_pass_has_enough_requests_for_its_bound_a_fail_far_over_the_limit_few_and_verification_more():
    model = KneeModel(KNEE, "concurrency", 0)
    answer = (await search(model, "ttft_p99_ms<=80", max=1024)).answer
    # a p99 bound needs 299 requests past a closed loop's two ramps; a screen sends an eighth of them
    assert all(p.requests >= 299 for p in answer.probes if p.verdict.passed)
    far = [p for p in answer.probes if p.value >= 96]
    assert far and all(p.verdict.name == "fail" and p.requests == 38 and p.steps == 1 for p in far)
    verify = [p for p in answer.probes if p.phase == "verify"]
    assert all(p.requests >= 3 * 299 for p in verify)
    # the candidate's verification pools its short probe's requests: it sends only what it lacks
    candidate = verify[0]
    short = max(p.requests for p in answer.probes if p.value == candidate.value and p.phase != "verify")
    sent = [requests - 2 * int(value) for value, requests, _ in model.calls]
    assert sent[sum(p.steps for p in answer.probes[:candidate.index])] == 3 * 299 - short
    assert [index for _, _, index in model.calls] == list(range(len(model.calls)))


async def test_a_probe_with_a_lucky_median_and_a_slow_tail_of_three_percent_fails_on_its_bound():
    # far below the knee, but 3 % of requests are 300 ms late: the median is fine, the p99 is not
    model = KneeModel(KNEE, "concurrency", 3, slow_share=0.03, slow_ms=300)
    answer = (await search(model, "ttft_p50_ms<=80,ttft_p99_ms<=80", max=4)).answer
    first = answer.probes[0]
    p50, p99 = first.verdict.readings
    assert p50.point < 80 and p50.bound < 80
    assert p99.bound > 80 and first.verdict.name == "fail"
    assert answer.boundary is None


async def test_a_limit_between_the_bounds_is_extended_then_undecided_never_a_false_fail():
    # 1 in 120 slow: 2, 4, 9 and 19 of 299, 598, 1,196 and 2,392 pooled requests (every extension
    # doubling them), at least as many as lie at or above the p99 bound's rank (1, 2, 7, 16:
    # core/slo_bounds.py), so the bound is slow; the point and the lower bound are fast. The data cannot
    # tell, and the probe says so rather than failing
    model = KneeModel(KNEE, "concurrency", 5, slow_share=1 / 120, slow_ms=300)
    answer = (await search(model, "ttft_p99_ms<=80", max=1)).answer
    [probe] = answer.probes
    assert probe.steps == 5  # the screen, the probe and three extensions, their requests pooled
    # a screen of 38, up to 299, then doubling to 598, 1,196 and 2,392: each step with its 2 ramps
    assert [requests for _, requests, _ in model.calls] == [40, 263, 301, 600, 1198]
    (reading,) = probe.verdict.readings
    assert reading.lower < 80 < reading.bound
    assert probe.verdict.name == "undecided" and probe.verdict.reason.startswith("inconclusive after 5 steps")
    assert answer.boundary is None and answer.undecided_to == 1 and answer.undecided() == [1]


async def test_a_probe_fails_only_on_its_lower_bound():
    # far past the knee: even the fastest requests are over the limit
    model = KneeModel(KNEE, "concurrency", 1)
    answer = (await search(model, "ttft_p99_ms<=80", start=128, max=128)).answer
    [probe] = answer.probes
    (reading,) = probe.verdict.readings
    assert probe.verdict.name == "fail" and reading.lower > 80
    assert "lower bound" in probe.verdict.reason


async def test_undecided_values_between_the_largest_pass_and_the_smallest_fail_make_the_answer_undecided():
    model = KneeModel(KNEE, "concurrency", 0)

    async def prober(value, requests, index):  # up to 8 far below the limit; 16 to 63 undecided (0.95 % slow)
        if 16 <= value < 64:
            return await KneeModel(KNEE, "concurrency", index, slow_share=1 / 105, slow_ms=300)(1, requests, index)
        return await model(value if value < 16 else 128.0, requests, index)  # past 64: far over it

    found = Search(parse_slos("ttft_p99_ms<=80"), SearchOptions(max=1024.0), prober, output_tokens=OUTPUT_TOKENS)
    answer = await found.run()
    assert answer.boundary == 15 and answer.verified  # bisected up to the first undecided value
    assert answer.undecided_to == 64 and answer.undecided()[0] == 16
    assert all(p.verdict.name in ("pass", "fail") for p in answer.probes if p.value < 16 or p.value >= 64)


async def test_a_target_that_fails_the_smallest_probe_is_an_answer_without_a_boundary():
    model = KneeModel(SimProfile(ttft_ms=500, itl_ms=10, slots=4), "concurrency", 0)
    answer = (await search(model, "ttft_p99_ms<=80")).answer
    assert answer.boundary is None and not answer.verified
    assert len(answer.probes) == 1


async def test_an_over_saturated_probe_fails_at_once_with_its_reason():
    async def prober(value, requests, index):
        return Measured([], over_saturated="server over-saturated: requests waiting grew from 0 to 40")
    found = Search(parse_slos("ttft_p99_ms<=80"), SearchOptions(), prober, output_tokens=4)
    answer = await found.run()
    [probe] = answer.probes
    assert (probe.verdict.name, probe.steps) == ("over-saturated", 1)
    assert "requests waiting grew from 0 to 40" in probe.verdict.reason


async def test_a_saturated_client_stops_the_search_with_the_fix_never_as_the_server_s_capacity():
    async def prober(value, requests, index):
        return Measured([], client_saturated="event-loop lag p99 40 ms")
    found = Search(parse_slos("ttft_p99_ms<=80"), SearchOptions(), prober, output_tokens=4)
    with pytest.raises(AgentSaturated) as caught:
        await found.run()
    assert "not the server's capacity" in str(caught.value) and "--workers" in str(caught.value)
    assert found.answer.boundary is None


@pytest.mark.parametrize("options,words", [
    (dict(tolerance=0.0), "tolerance must be a share in (0, 1)"),
    (dict(tolerance=1.0), "tolerance must be a share in (0, 1)"),
    (dict(start=64.0, max=32.0), "start 64 is above max 32"),
    (dict(start=0.0), "start must be > 0"),
    (dict(start=1.5), "give whole numbers"),
])
def test_bad_search_options_are_one_line_and_exit_2(options, words):
    with pytest.raises(ConfigError) as caught:
        model_builder(SearchOptions)(**{"start": 1.0, **options})
    assert words in str(caught.value) and caught.value.exit_code == ExitCode.BAD_INPUT


async def test_when_no_verification_passes_the_answer_is_the_largest_short_pass_said_unverified():
    model = KneeModel(KNEE, "concurrency", 6)

    async def prober(value, requests, index):  # short probes pass up to 64; every long one fails
        measured = await model(min(value, 64.0) if requests < 600 else 128.0, requests, index)
        return measured

    found = Search(parse_slos("ttft_p99_ms<=80"), SearchOptions(max=1024.0), prober, output_tokens=OUTPUT_TOKENS)
    answer = await found.run()
    verify = [p for p in answer.probes if p.phase == "verify"]
    assert len(verify) == 3 and not any(p.verdict.passed for p in verify)
    assert not answer.verified and answer.boundary is not None
    assert answer.boundary < min(p.value for p in verify)
    assert answer.boundary in {p.value for p in answer.probes if p.verdict.passed}  # measured, not guessed
