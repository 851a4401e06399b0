"""What `search` prints: a line per probe, the final block (answer, binding SLO, headroom of the others,
throughput, method), and --json with the answer and every probe's bounds."""

from __future__ import annotations

import json

from siliconbench.agent.search.method import Search
from siliconbench.core.search import SearchOptions
from siliconbench.agent.search.run import as_json, final_block, probe_line
from siliconbench.agent.sim import SimProfile
from siliconbench.core.slo import parse_slos

from .knee import KneeModel

KNEE = SimProfile(ttft_ms=20, itl_ms=10, slots=32)


async def answer_of(profile: SimProfile = KNEE, slo: str = "ttft_p99_ms<=80,itl_p99_ms<=50"):
    lines: list[str] = []
    search = Search(parse_slos(slo), SearchOptions(max=256.0), KneeModel(profile, "concurrency", 4), output_tokens=4,
                    on_probe=lambda probe: lines.append(probe_line("concurrency", probe)))
    return await search.run(), lines


async def test_each_probe_shows_its_value_requests_bounds_against_the_slos_and_verdict():
    answer, lines = await answer_of()
    assert len(lines) == len(answer.probes)
    # 301 sent, 299 judged: a closed loop's ramps left out
    assert lines[0].startswith("probe 1 (bracket) concurrency 1: 299 requests; TTFT p99 ")
    assert "of 80 ms)" in lines[0] and "ITL p99 10 ms (bound 10 ms of 50 ms)" in lines[0]
    assert lines[0].endswith("-> PASS")
    failed = next(line for line in lines if "-> FAIL" in line)
    assert "TTFT p99" in failed.split("-> FAIL")[1]  # the reason names the SLO


async def test_the_final_block_names_the_answer_the_binding_slo_the_others_headroom_and_the_method():
    answer, _ = await answer_of()
    first, binding, other, at, method = final_block(answer).splitlines()
    assert first == f"largest concurrency within SLO: {answer.boundary:g} (verified)."
    assert binding.startswith("Binding: TTFT p99 (bound ") and binding.endswith(" of 80 ms).")
    assert other == "ITL p99 10 ms (80% headroom)."
    assert at.startswith(f"At {answer.boundary:g}: ") and "output tok/s" in at and "req/s" in at
    assert method.startswith("Method: bracket by doubling") and method.endswith("tolerance 5% or one stream.")


async def test_no_load_within_the_slos_is_said_with_the_first_probe_s_reason():
    answer, _ = await answer_of(SimProfile(ttft_ms=500, itl_ms=10, slots=4))
    assert final_block(answer).splitlines()[0].startswith("no load within SLO: at concurrency 1 TTFT p99 5")


async def test_json_holds_the_answer_and_every_probe_with_its_bounds():
    answer, _ = await answer_of()
    document = json.loads(as_json(answer, "s-1"))
    assert {"search_id", "control", "boundary", "verified", "binding", "slo", "probes", "method"} <= set(document)
    assert (document["search_id"], document["control"], document["binding"]) == ("s-1", "concurrency", "ttft_p99_ms")
    assert document["slo"] == {"ttft_p99_ms": 80.0, "itl_p99_ms": 50.0}
    probe = document["probes"][0]
    assert {"value", "requests", "verdict", "bounds"} <= set(probe)
    assert probe["bounds"]["itl_p99_ms"]["limit"] == 50.0 and probe["bounds"]["itl_p99_ms"]["bound"] is not None


async def test_an_undecided_answer_says_between_which_values_and_where_the_data_could_not_decide():
    slow = KneeModel(KNEE, "concurrency", 0, slow_share=1 / 105, slow_ms=300)  # 0.95 %: never decided
    fast = KneeModel(KNEE, "concurrency", 0)

    async def prober(value, requests, index):  # up to 3 pass, 4 undecided, 5 and past far over the limit
        return await (slow(1, requests, index) if value == 4 else fast(value if value < 4 else 128.0, requests, index))

    answer = await Search(parse_slos("ttft_p99_ms<=80"), SearchOptions(max=8.0), prober, output_tokens=4).run()
    first, second = final_block(answer).splitlines()[:2]
    assert first == ("largest concurrency within SLO: undecided between 3 and 5: at 4 the data could not decide, "
                     "every extension taken.")
    assert second == "Largest pass: 3 (verified)."
    document = json.loads(as_json(answer, "s-2"))
    assert (document["boundary"], document["undecided_to"], document["undecided"]) == (3.0, 5.0, [4.0])
