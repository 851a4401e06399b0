"""`siliconbench-agent search` on bad input: one line naming the flag, exit 2, before any request."""

from __future__ import annotations

import pytest

from siliconbench.agent.cli import app
from siliconbench.core.errors import ExitCode
from tests.programs import run_program

# nothing listens on the target: each bad input is refused before the target is asked anything
TARGET = ("--target", "http://127.0.0.1:9")


@pytest.mark.parametrize("args,words", [
    (("--slo", "ttft_p97_ms<=500"), "unknown SLO 'ttft_p97_ms'"),
    (("--slo", "itl_p99_ms<=0"), "itl_p99_ms: the limit must be a number of milliseconds > 0, got '0'"),
    (("--slo", "ttft_p99_ms<=500", "--tolerance", "1.5"), "tolerance must be a share in (0, 1)"),
    (("--slo", "ttft_p99_ms<=500", "--tolerance", "0"), "tolerance must be a share in (0, 1)"),
    (("--slo", "ttft_p99_ms<=500", "--start", "64", "--max", "32"), "start 64 is above max 32"),
    (("--slo", "ttft_p99_ms<=500", "--control", "tokens"), "--control"),
])
def test_bad_input_is_one_line_and_exit_2(args, words):
    code, lines = run_program(app, "search", *TARGET, *args)
    assert code == ExitCode.BAD_INPUT and len(lines) == 1, lines
    assert words in lines[0]


def test_search_takes_the_run_s_target_collector_and_workload_flags_but_picks_its_own_loads():
    code, lines = run_program(app, "search", "--help")
    text = " ".join(lines)
    assert code == 0
    for given in ("--target", "--collector", "--scenario", "--spool-dir", "--input-tokens", "--output-tokens",
                  "--endpoint", "--workers", "--slo", "--control", "--start", "--max", "--tolerance", "--json"):
        assert given in text, given
    for chosen in ("--concurrency", "--rates", "--requests-per-step", "--repetitions"):
        assert chosen not in text, chosen
