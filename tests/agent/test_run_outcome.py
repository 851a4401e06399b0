"""How a run ended, as its end event tells the collector: complete, interrupted (with what was kept)
or aborted (with the reason), and how many request records the agent made."""

from __future__ import annotations

import asyncio

from siliconbench.agent.app import _ending, end_event
from siliconbench.agent.errors import TargetMisconfigured
from siliconbench.agent.load.tally import RunTally
from siliconbench.core.plan import Plan
from siliconbench.core.wire import pb

PLAN = Plan(concurrency=(1, 2), repetitions=2)   # 4 steps


def tally_after(requests_per_step: list[int], under_way: int | None = None) -> RunTally:
    """A run's tally once steps with these requests finished, and a step under way with `under_way`."""
    tally = RunTally()
    for requests in requests_per_step:
        step = tally.begin(output_tokens_wanted=6)
        for i in range(requests):
            step.add(pb.RequestRecord(request_id=f"r/{i}"))
        tally.end()
    if under_way is not None:
        step = tally.begin(output_tokens_wanted=6)
        for i in range(under_way):
            step.add(pb.RequestRecord(request_id=f"r/{i}"))
    return tally


def test_the_end_event_says_how_many_request_records_the_run_handed_on():
    event = end_event("r", None, tally_after([32, 32, 32, 32]), PLAN)
    assert (event.run_id, event.phase, event.outcome, event.requests_sent) == ("r", pb.PHASE_END, "complete", 128)


def test_a_run_that_ran_every_step_is_complete():
    assert _ending(None, tally_after([32, 32, 32, 32]), PLAN) == (
        "complete", "4 of 4 steps finished, 128 request records kept")


def test_ctrl_c_is_an_interruption_that_counts_the_records_of_the_step_under_way():
    tally = tally_after([3], under_way=2)
    outcome, detail = _ending(asyncio.CancelledError(), tally, PLAN)
    assert outcome == "interrupted"
    assert detail == "stopped by the user or a signal during step 2; 1 of 4 steps finished, 5 request records kept"
    assert end_event("r", asyncio.CancelledError(), tally, PLAN).requests_sent == 5
    assert _ending(KeyboardInterrupt(), tally_after([]), PLAN)[0] == "interrupted"


def test_a_fleet_run_stopped_by_its_collector_or_its_lease_says_so():
    why = "stopped by itself: no lease renewal from the collector for 30 s (cut off from it)"
    outcome, detail = _ending(asyncio.CancelledError(why), tally_after([5, 4]), PLAN)
    assert (outcome, detail) == ("interrupted", f"{why} during step 3; 2 of 4 steps finished, 9 request records kept")


def test_a_refused_warm_up_aborts_the_run_with_its_reason():
    outcome, detail = _ending(TargetMisconfigured("the target refused all 2 warm-up requests"), tally_after([]), PLAN)
    assert (outcome, detail) == ("aborted", "the target refused all 2 warm-up requests; 0 of 4 steps finished, "
                                            "0 request records kept")
