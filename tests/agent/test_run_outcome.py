"""How a run ended, as its end event tells the collector: complete, interrupted (with what was kept)
or aborted (with the reason), and how many request records the agent made."""

from __future__ import annotations

import asyncio

from siliconbench.agent.app import _ending, _Kept
from siliconbench.agent.errors import TargetMisconfigured
from siliconbench.core.plan import Plan
from siliconbench.core.wire import pb
from tests.agent.test_loadgen import ListSink

PLAN = Plan(concurrency=(1, 2), repetitions=2)   # 4 steps


def kept_after(steps: int, requests: int) -> _Kept:
    kept = _Kept(ListSink())
    for i in range(steps):
        kept.add_step(pb.StepEvent(run_id="r", step=i))
    for i in range(requests):
        kept.add_request(pb.RequestRecord(run_id="r", request_id=f"r/{i}"))
    return kept


def test_the_sink_gets_everything_and_the_count_says_what_was_kept():
    sink = ListSink()
    kept = _Kept(sink)
    kept.add_step(pb.StepEvent(run_id="r"))
    kept.add_request(pb.RequestRecord(run_id="r", request_id="r/0"))
    kept.add_run(kept.end("r", "complete", ""))
    assert (len(sink.steps), len(sink.requests)) == (1, 1)
    assert (sink.runs[0].phase, sink.runs[0].outcome, sink.runs[0].requests_sent) == (pb.PHASE_END, "complete", 1)


def test_a_run_that_ran_every_step_is_complete():
    assert _ending(None, kept_after(4, 128), PLAN) == ("complete", "4 of 4 steps finished, 128 request records kept")


def test_ctrl_c_is_an_interruption_that_says_what_was_kept():
    outcome, detail = _ending(asyncio.CancelledError(), kept_after(1, 5), PLAN)
    assert outcome == "interrupted"
    assert detail == "stopped by the user or a signal during step 2; 1 of 4 steps finished, 5 request records kept"
    assert _ending(KeyboardInterrupt(), kept_after(0, 0), PLAN)[0] == "interrupted"


def test_a_fleet_run_stopped_by_its_collector_or_its_lease_says_so():
    why = "stopped by itself: no lease renewal from the collector for 30 s (cut off from it)"
    outcome, detail = _ending(asyncio.CancelledError(why), kept_after(2, 9), PLAN)
    assert (outcome, detail) == ("interrupted", f"{why} during step 3; 2 of 4 steps finished, 9 request records kept")


def test_a_refused_warm_up_aborts_the_run_with_its_reason():
    outcome, detail = _ending(TargetMisconfigured("the target refused all 2 warm-up requests"), kept_after(0, 0), PLAN)
    assert (outcome, detail) == ("aborted", "the target refused all 2 warm-up requests; 0 of 4 steps finished, "
                                            "0 request records kept")
