"""`plan --validate`'s parts: the plan it runs as a child (without the replay's flags), the replay's plan (the
search's workload at the load's share per node), and a command line that starts a run is never a read."""

from __future__ import annotations

import subprocess
import sys

from siliconbench.collector.cli import app
from siliconbench.collector.reads import read_command
from siliconbench.collector.validate import Chosen, child_args, flag_value, replay_plan
from siliconbench.core.plan import Plan, plan_from_mapping
from siliconbench.core.search import SearchPlan
from tests.programs import run_program
from tests.servers import make_store

SEARCHED = Plan(concurrency=(), rates=(1.0,), input_tokens=512, output_tokens=128, endpoint="chat", model="m",
                search=SearchPlan(slo="ttft_p99_ms<=800", control="concurrency"))


def test_the_plan_runs_as_a_child_without_the_replay_s_flags_and_its_output_s():
    argv = ["plan", "--validate", "--load", "1 req/s", "--collector", "h:1", "--wait-s=5", "-f", "csv", "-o", "v.md",
            "--plan-out", "r.yaml", "--selector", "node=a", "--validate-s", "9", "--store", "chdb://x"]
    assert child_args(argv) == ["plan", "--load", "1 req/s", "--store", "chdb://x"]
    assert flag_value(["plan", "--slo", "a<=1", "--slo=b<=2"], "--slo") == "b<=2"


def test_plan_is_a_read_but_plan_validate_starts_a_run_so_it_is_never_forwarded():
    assert read_command(["plan", "--load", "1 req/s", "--store", "chdb://x"]) == ("plan",)
    assert read_command(["plan", "--validate", "--load", "1 req/s"]) is None
    assert read_command(["check-slo", "--run", "r"]) == ("check-slo",)


def test_the_replay_sends_the_search_s_workload_at_the_load_s_share_per_node_for_the_time_asked():
    replay = replay_plan(SEARCHED, 30.0, 4, 45.0)
    [step] = replay.step_specs()
    assert (step.mode, step.rate_rps, step.duration_s, step.requests, step.concurrency) == ("poisson", 7.5, 45.0, 0, 0)
    assert (replay.input_tokens, replay.output_tokens, replay.endpoint, replay.model) == (512, 128, "chat", "m")
    assert replay.search is None and replay.repetitions == 1
    assert plan_from_mapping(__import__("json").loads(replay.to_json()), "replay") == replay  # a plan file run start reads


def test_a_load_in_tokens_per_second_is_replayed_as_requests_of_the_search_s_output_length():
    tokens = Chosen("p5.48xlarge", 2, "s", {"value": 2560.0, "unit": "tok/s", "output_tps": 2560.0}, False)
    requests = Chosen("p5.48xlarge", 2, "s", {"value": 20.0, "unit": "req/s", "output_tps": 2560.0}, False)
    assert tokens.load_rps(SEARCHED) == requests.load_rps(SEARCHED) == 20.0


def test_validate_refuses_a_format_check_slo_cannot_write_before_starting_anything():
    code, lines = run_program(app, "plan", "--validate", "--load", "1 req/s", "--slo", "ttft_p99_ms<=800",
                              "--input-tokens", "1", "--output-tokens", "1", "--format", "html",
                              "--collector", "127.0.0.1:9", "--store", "chdb:///nonexistent/store")
    assert code == 2 and len(lines) == 1
    assert "--format 'html' is not one of markdown, csv, json" in lines[0]


def test_a_plan_with_no_choice_has_nothing_to_replay_and_says_so_before_any_agent_is_asked(tmp_path):
    store = make_store(f"chdb://{tmp_path / 'empty'}")
    done = subprocess.run([sys.executable, "-m", "siliconbench.collector", "plan", "--validate", "--load", "1 req/s",
                           "--slo", "ttft_p99_ms<=800", "--input-tokens", "1", "--output-tokens", "1",
                           "--candidates", "p5.48xlarge", "--collector", "127.0.0.1:9", "--store", store],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "the plan has no choice to validate: no candidate has a search for this workload and these SLOs " \
           "(missing: p5.48xlarge)" in done.stderr
