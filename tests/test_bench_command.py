"""`siliconbench bench`: one command benchmarks one server with the collector included, prints each step's
result in the block `vllm bench serve` prints, saves the flat JSON its users' scripts read, writes the
HTML report beside it, and a Ctrl-C at the terminal still ends with the run stored as interrupted."""

from __future__ import annotations

import dataclasses

import datetime
import json
import os
import signal
import subprocess

import pytest
import typer

from siliconbench.agent.cli import app as agent_app
from siliconbench.bench.cli import app
from siliconbench.bench.result import result_block, result_lines, step_result
from siliconbench.collector.figures import Percentiles, StepRow
from siliconbench.collector.rollups import Series
from siliconbench.core.errors import ExitCode
from tests.programs import run_program
from tests.servers import PY, REPO, Proc
from tests.test_lifecycle import LOAD_UNDER_WAY, LONG_PLAN, run_state

SERIES = Series("r1", "node-a", "A", datetime.datetime(2026, 12, 7, 3, 4, 5), "http://vllm:8000", "llama", False,
                "0.11.0", "p5.48xlarge", "gpu", 8, "H100")
STEP = StepRow(run_id="r1", agent_id="node-a", step=1, concurrency=8, requests=100, errors=2, ok_requests=98,
               tokens_in=12_800, tokens_out=6_272, wall_s=10.0, ttft_mean_ms=50.0, tpot_mean_ms=9.5,
               itl_mean_ms=9.0, e2e_mean_ms=650.0, output_tps=627.2, total_tps=1907.2, rps=9.8, goodput_rps=9.0,
               ttft_ms=Percentiles(48.0, 60.0, 70.0, 90.0), tpot_ms=Percentiles(9.4, 9.9, 10.0, 11.0),
               itl_ms=Percentiles(9.0, 9.5, 10.0, 12.0), e2e_ms=Percentiles(640.0, 700.0, 710.0, 800.0))
VLLM_KEYS = {"date", "backend", "model_id", "num_prompts", "request_rate", "max_concurrency", "duration", "completed",
             "failed", "total_input_tokens", "total_output_tokens", "request_throughput", "output_throughput",
             "total_token_throughput", *(f"{stat}_{metric}_ms" for stat in ("mean", "median", "p99")
                                         for metric in ("ttft", "tpot", "itl", "e2el"))}
BENCH = ("-m", "siliconbench.bench", "bench")


def test_a_step_saves_under_vllm_bench_serve_s_key_names_with_its_values():
    result = step_result(SERIES, STEP)
    assert VLLM_KEYS <= result.keys() and "request_goodput" not in result  # vllm: only with --goodput
    assert (result["completed"], result["failed"], result["max_concurrency"], result["request_rate"]) == (98, 2, 8, "inf")
    assert (result["mean_ttft_ms"], result["median_ttft_ms"], result["p99_ttft_ms"], result["p99_e2el_ms"]) == \
        (50.0, 48.0, 90.0, 800.0)
    assert (result["output_throughput"], result["request_throughput"], result["duration"]) == (627.2, 9.8, 10.0)
    assert (result["run_id"], result["step"], result["instance_type"]) == ("r1", 1, "p5.48xlarge")
    assert step_result(SERIES, STEP, goodput=True)["request_goodput"] == 9.0


def test_one_step_s_file_is_one_json_object_and_more_steps_one_a_line():
    one = step_result(SERIES, STEP)
    assert json.loads(result_lines([one])) == one
    assert [json.loads(line) for line in result_lines([one, one]).splitlines()] == [one, one]


def test_the_block_reads_as_vllm_bench_serve_prints_it():
    lines = result_block(step_result(SERIES, STEP)).splitlines()
    assert lines[0] == "============ Serving Benchmark Result ============"
    assert lines[1] == f"{'Step:':<40} 2 (concurrency 8, repetition 0)"
    assert lines[2].startswith(f"{'Target:':<40} ") and "SIMULATED" not in lines[2]
    assert f"{'Successful requests:':<40} 98" in lines and f"{'Failed requests:':<40} 2" in lines
    assert f"{'Output token throughput (tok/s):':<40} 627.20" in lines
    assert "---------------Time to First Token----------------" in lines
    assert [line for line in lines if "TTFT (ms)" in line] == [f"{'Mean TTFT (ms):':<40} 50.00",
                                                               f"{'Median TTFT (ms):':<40} 48.00",
                                                               f"{'P99 TTFT (ms):':<40} 90.00"]
    assert lines[-1] == "=" * 50


def test_a_simulated_target_is_named_so_in_every_block():
    simulated = dataclasses.replace(SERIES, simulated=True)
    assert "(SIMULATED: the figures test the pipeline, not a server)" in result_block(step_result(simulated, STEP))


def test_it_takes_every_option_of_agent_run_but_the_collector_it_runs_itself():
    def options(command) -> set[str]:
        return {opt for param in command.params for opt in param.opts if opt.startswith("--")}

    agent_run = typer.main.get_command(agent_app).commands["run"]  # type: ignore[attr-defined]
    bench = typer.main.get_command(app).commands["bench"]  # type: ignore[attr-defined]
    assert options(agent_run) - options(bench) == {"--collector"}


@pytest.mark.parametrize("args, says", [
    (("--store", "http://ch:8123/db"), "runs its collector on an embedded store"),
    (("--save-result", "out.html"), "name a .json file"),
])
def test_what_it_cannot_do_is_one_line_before_anything_starts(args, says):
    code, lines = run_program(app, "bench", *args)
    assert code == ExitCode.BAD_INPUT and len(lines) == 1 and says in lines[0]


def test_one_command_prints_each_step_s_result_and_saves_json_and_html(tmp_path):
    store, saved = f"chdb://{tmp_path}/data", tmp_path / "result.json"
    done = subprocess.run([PY, *BENCH, "--simulate", "--concurrency", "1,4", "--requests-per-step", "8",
                           "--repetitions", "1", "--warmup-requests", "0", "--input-tokens", "16",
                           "--output-tokens", "4", "--store", store, "--save-result", str(saved),
                           "--spool-dir", str(tmp_path / "spool")],
                          capture_output=True, text=True, timeout=300, cwd=REPO, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = done.stdout.strip().splitlines()[-1]
    assert done.stdout.count("Serving Benchmark Result") == 2
    results = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [(r["run_id"], r["max_concurrency"], r["completed"], r["simulated"]) for r in results] == \
        [(run_id, 1, 8, True), (run_id, 4, 8, True)]
    assert all(r["mean_ttft_ms"] > 0 and r["output_throughput"] > 0 for r in results)
    html = (tmp_path / "result.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and run_id in html
    assert run_state(store, run_id).startswith("complete")


def test_ctrl_c_at_the_terminal_exits_130_with_the_run_stored_as_interrupted(tmp_path):
    store = f"chdb://{tmp_path}/data"
    with open(tmp_path / "bench.log", "w") as log:
        child = subprocess.Popen([PY, *BENCH, "--simulate", *LONG_PLAN, "--store", store, "--spool-dir",
                                  str(tmp_path / "spool")], stdout=subprocess.DEVNULL, stderr=log, cwd=REPO,
                                 start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    watched = Proc("bench", child, tmp_path / "bench.log")
    try:
        run_id = watched.wait_log(LOAD_UNDER_WAY).group(1)
        os.killpg(child.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        assert child.wait(120) == ExitCode.INTERRUPTED, watched.log()[-3000:]
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert "Traceback" not in watched.log()
    assert run_state(store, run_id).startswith("interrupted"), watched.log()[-3000:]
