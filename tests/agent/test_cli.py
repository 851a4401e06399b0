"""The agent's command line: `run` and `daemon` share the node flags, bad flags are one line naming
each of them, plan flags override a plan file and show the plan's defaults, and the environment
variables the images set are honoured."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from siliconbench.agent.cli import app
from siliconbench.agent.config import AgentConfig
from siliconbench.agent.options import NODE_FLAGS, PLAN_FLAGS, agent_config, plan_from_flags
from siliconbench.agent.samplers.detect import nvml_present
from siliconbench.core.errors import ConfigError
from siliconbench.core.plan import Plan
from siliconbench.core.settings import ClientTls
from tests.agent.samplers.conftest import FAKE_NEURON_MONITOR, INF2_FIXTURE
from tests.programs import run_program


def invoke(*args: str) -> tuple[int, list[str]]:
    return run_program(app, *args)


@pytest.mark.parametrize("command", ["run", "daemon"])
def test_bad_node_flags_are_one_line_naming_every_flag(command):
    code, lines = invoke(command, "--sample-interval-s", "100", "--spool-max-mb", "0", "--tls-cert", "c.pem")
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("error: options: 3 problems: --sample-interval-s: must be less than or equal to 60")
    assert "--spool-max-mb: must be greater than or equal to 1" in lines[0] and "--tls-key" in lines[0]


def test_bad_plan_flags_name_the_flag():
    code, lines = invoke("run", "--repetitions", "0", "--workers", "100000")
    assert code == 2 and lines == ["error: options: 2 problems: --repetitions: must be greater than or equal to 1, "
                                   "got 0; --workers: must be auto or a number of processes from 1 to 256, got 100000"]


def test_run_help_shows_the_plan_defaults():
    code, lines = invoke("run", "--help")
    text = "\n".join(lines)
    assert code == 0
    for flag, default in (("--concurrency", "1,4,8,16,32"), ("--repetitions", "3"), ("--input-tokens", "512"),
                          ("--request-timeout-s", "300"), ("--arrival", "poisson"), ("--slo", "none")):
        line = next(line for line in lines if f" {flag} " in line)
        assert f"[default: {default}]" in line, line
    assert "[env var: SILICONBENCH_NEURON_MONITOR]" in text


def flags(group: list, **given: object) -> dict:
    return {flag.name: flag.default for flag in group} | given


def test_plan_flags_override_only_what_they_give(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("concurrency: [2]\noutput_tokens: 64\nrepetitions: 2\n")
    plan = plan_from_flags(**flags(PLAN_FLAGS, plan_file=str(path), repetitions=1, text_prompts=True))
    assert (plan.concurrency, plan.output_tokens, plan.repetitions, plan.token_id_prompts) == ((2,), 64, 1, False)
    assert plan_from_flags(**flags(PLAN_FLAGS)) == Plan()


def test_node_flags_make_the_agent_config():
    config = agent_config(**flags(NODE_FLAGS, spool_max_mb=2, scenario="A", tls_ca=Path("ca.pem")))
    assert isinstance(config, AgentConfig)
    assert (config.spool_max_bytes, config.scenario, config.tls) == (2 * 2**20, "A", ClientTls(ca=Path("ca.pem")))
    with pytest.raises(ConfigError, match="--sample-interval-s"):
        agent_config(**flags(NODE_FLAGS, sample_interval_s=0.01))


def test_neuron_monitor_comes_from_the_environment_when_it_is_not_on_path(tmp_path):
    if nvml_present():
        pytest.skip("this node has NVIDIA GPUs: probe reports them first")
    installed = tmp_path / "opt" / "aws" / "neuron" / "bin" / "neuron-monitor"
    installed.parent.mkdir(parents=True)
    shutil.copy2(FAKE_NEURON_MONITOR, installed)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_NEURON_", "SILICONBENCH_"))}
    assert shutil.which("neuron-monitor", path=env.get("PATH")) is None
    env["SILICONBENCH_NEURON_MONITOR"] = str(installed)
    env["FAKE_NEURON_FIXTURE"] = str(INF2_FIXTURE)  # the copy cannot find it beside itself
    probe = subprocess.run([sys.executable, "-m", "siliconbench.agent", "probe"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert "accelerators: 12 x neuron inferentia2" in probe.stdout
    assert "instance type: inf2.48xlarge" in probe.stdout


def test_rates_flag_alone_runs_only_rate_steps():
    plan = plan_from_flags(**flags(PLAN_FLAGS, rates="4,8"))
    assert [s.mode for s in plan.step_specs()] == ["poisson", "poisson"]


def test_rates_flag_keeps_a_plan_files_own_concurrency(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("concurrency: [2]\n")
    plan = plan_from_flags(**flags(PLAN_FLAGS, rates="4", plan_file=str(path)))
    assert [s.label() for s in plan.step_specs()] == ["concurrency=2", "poisson rate=4/s"]


def test_the_command_line_loads_no_simulator_server_until_sim_runs():
    """`sim`'s flags come from SimProfile; reading them must not load the simulator's aiohttp server."""
    probe = ("import sys, siliconbench.agent.cli; "
             "print(sorted(m for m in ('aiohttp.web', 'siliconbench.agent.sim.server') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
