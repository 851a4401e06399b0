"""`demo` reads its flags into the agent's plan before it starts anything, and starts each server on a port
the kernel picks, reading the address from the server's own "listening on" line."""

from __future__ import annotations

import io
import sys

import pytest

from siliconbench.collector.cli import app, given_flags
from siliconbench.collector.demo import server_process
from siliconbench.collector.errors import CollectorError
from siliconbench.collector.options import DEMO_PLAN, demo_plan
from siliconbench.core.errors import ExitCode
from tests.programs import run_program


def test_bad_plan_flags_are_one_line_before_any_process_starts(tmp_path):
    code, lines = run_program(app, "demo", "--concurrency", "0", "--output-tokens", "0",
                              "--store", f"chdb://{tmp_path}/data")
    assert code == ExitCode.BAD_INPUT
    assert lines == ["error: options: 2 problems: --concurrency: must be greater than or equal to 1, got 0; "
                     "--output-tokens: must be greater than or equal to 1, got 0"]
    assert not (tmp_path / "data").exists()  # no collector was started on the store


def test_the_plan_flags_apply_to_the_demo_plan_and_the_rest_of_it_stays():
    plan = demo_plan(concurrency="2,3", requests_per_step=5, input_tokens=16, output_tokens=8)
    assert (plan.concurrency, plan.requests_per_step, plan.input_tokens, plan.output_tokens) == ((2, 3), 5, 16, 8)
    assert plan.repetitions == DEMO_PLAN.repetitions == 1


def test_a_server_is_found_at_the_address_its_log_line_names_and_its_log_is_passed_on():
    said = "print('INFO x: simulator listening on http://127.0.0.1:4321 (profile)', file=sys.stderr, flush=True)"
    passed_on = io.StringIO()
    script = f"import sys, time; {said}; time.sleep(60)"
    with server_process([sys.executable, "-c", script], "simulator", log_to=passed_on) as (child, address):
        assert address == "127.0.0.1:4321" and child.poll() is None
    assert child.poll() is not None  # stopped when the block ended
    assert "simulator listening on http://127.0.0.1:4321" in passed_on.getvalue()


def test_a_server_that_exits_before_listening_is_one_error_with_its_exit_code():
    with pytest.raises(CollectorError, match="the collector exited with code 6 before it was listening") as failed:
        with server_process([sys.executable, "-c", "raise SystemExit(6)"], "collector", log_to=io.StringIO()):
            pass
    assert failed.value.exit_code == ExitCode.ADDRESS_IN_USE == 6


def test_only_the_simulator_and_agent_flags_given_are_passed_on_so_theirs_stay_the_defaults():
    assert given_flags(ttft_ms=20.0, itl_ms=None, sample_interval_s=0.5) == ["--ttft-ms", "20.0",
                                                                            "--sample-interval-s", "0.5"]
