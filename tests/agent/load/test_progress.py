"""The live progress line and log lines never share a line on a terminal; a finished step's line states
its output tok/s as the reports do; both say where the whole run stands and about how long it has left."""

from __future__ import annotations

import io
import logging

import pytest

from siliconbench.agent.load.progress import WIPE, PlanProgress, StepProgress
from siliconbench.agent.load.tally import StepTally
from siliconbench.core.plan import StepSpec
from siliconbench.core.wire import pb


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        """The lines a terminal shows: on each line, what was written after its last wipe."""
        return [line.rsplit(WIPE, 1)[-1] for line in self.getvalue().split("\n")]


@pytest.fixture
def terminal():
    stream = Terminal()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def finished(progress: StepProgress, tokens: int = 64, error: str = "") -> None:
    """A request of the step finished: into the tally, then the progress is told (as the load generator does)."""
    progress.tally.add(pb.RequestRecord(output_tokens=tokens, error_class=error))
    progress.update()


def test_a_log_record_wipes_the_live_line_and_the_next_update_redraws_it(terminal):
    progress = StepProgress("step 1/3 concurrency 4", StepTally(64), 10, terminal)
    finished(progress)
    logging.getLogger("siliconbench.test").warning("target slow")
    finished(progress)
    progress.finish()
    shown = terminal.screen()
    assert shown[0] == "WARNING target slow"
    assert shown[1].startswith("step 1/3 concurrency 4: 2/10 requests") and "WARNING" not in shown[1]


def test_the_filter_is_gone_after_the_step(terminal):
    progress = StepProgress("step", StepTally(64), 1, terminal)
    finished(progress)
    progress.finish()
    handler = logging.getLogger().handlers[-1]
    assert handler.filters == []


def test_the_live_line_is_cut_to_the_terminal_width(terminal, monkeypatch):
    monkeypatch.setenv("COLUMNS", "30")
    progress = StepProgress("step 1/3 concurrency 4 repetition 2", StepTally(64), 10, terminal)
    finished(progress)
    assert len(terminal.screen()[0]) == 29


def test_the_live_line_says_why_the_load_is_held_back_while_it_is(terminal):
    reason: list[str | None] = ["load paused: the spool /s cannot write batch 7 (No space left on device)"]
    progress = StepProgress("step 1/3 concurrency 4", StepTally(64), 10, terminal, note=lambda: reason[0])
    finished(progress)
    assert terminal.screen()[0].startswith("step 1/3 concurrency 4: [load paused: the spool /s cannot write batch 7")
    reason[0] = None
    progress.finish()
    assert "paused" not in terminal.screen()[-1]


def test_a_finished_step_states_the_reports_tok_s_from_first_send_to_last_end(terminal):
    tally = StepTally(100)
    progress = StepProgress("step 1/1 concurrency 2", tally, 3, terminal)
    for start_s, e2e_s, tokens, error in ((1.0, 2.0, 100, ""), (1.5, 2.5, 100, ""), (2.0, 0.5, 7, "http_500")):
        tally.add(pb.RequestRecord(start_unix_ns=int(start_s * 1e9), e2e_ns=int(e2e_s * 1e9),
                                   output_tokens=tokens, error_class=error))
        progress.update()
    assert (tally.throughput.tokens, tally.throughput.wall_s) == (200, 3.0)  # failed tokens out; the span 1.0 s -> 4.0 s
    progress.finish()
    assert terminal.screen()[-2] == ("step 1/1 concurrency 2: 3/3 requests  67 output tok/s over 3.00 s "
                                     "(first send to last end)  1 errors")


def closed(concurrency: int, requests: int = 0, duration_s: float = 0.0) -> StepSpec:
    return StepSpec(mode="closed", concurrency=concurrency, requests=requests, duration_s=duration_s)


def test_the_whole_run_s_time_left_follows_the_steps_bounds_and_the_pace_so_far():
    run = PlanProgress([closed(1, requests=10), closed(4, requests=40), StepSpec(mode="poisson", rate_rps=5.0,
                                                                                 requests=50)])
    assert run.text(2.0, 0) == "run: 0/3 steps done"  # a closed step bound by requests alone: not known yet
    assert run.left_s(2.0, 4) is None  # ... nor the next one until a closed step has finished
    run.step_ended(wall_s=5.0, requests=10)  # 0.5 s a request at concurrency 1
    assert run.left_s(0.0, 0) == 40 * 0.5 / 4 + 50 / 5.0
    assert run.left_s(3.0, 20) == 3.0 + 10.0  # the step under way at its own pace, then the rate step
    run.step_ended(wall_s=6.0, requests=40)
    run.step_ended(wall_s=10.0, requests=50)
    assert run.text(0.0, 0) == "run: 3/3 steps done, about 0 s left"


def test_steps_past_the_listed_ones_are_counted_without_an_estimate():
    run = PlanProgress([closed(1, requests=10)])  # a search lists its first probe; the rest it sizes as it goes
    for _ in range(3):
        run.step_ended(wall_s=1.0, requests=10)
    assert run.text(0.0, 0) == "run: 3 steps done"


def test_a_duration_bounds_the_estimate_and_the_time_left_reads_in_minutes():
    run = PlanProgress([closed(8, duration_s=90.0), closed(8, requests=100_000, duration_s=120.0)])
    assert run.left_s(30.0, 500) == 60.0 + 120.0
    assert run.text(30.0, 500) == "run: 0/2 steps done, about 3 min 00 s left"


def test_the_live_line_and_the_step_s_last_line_say_where_the_run_stands(terminal):
    run = PlanProgress([closed(1, requests=2), closed(1, requests=2)])
    progress = StepProgress("step 1/2 concurrency 1", StepTally(100), 2, terminal, run=run)
    finished(progress)
    assert terminal.screen()[-1].startswith("step 1/2 concurrency 1: 1/2 requests  (run: 0/2 steps done)  ")
    run.step_ended(wall_s=1.0, requests=2)
    progress.finish()
    assert terminal.screen()[-2].endswith("| run: 1/2 steps done, about 1 s left")
