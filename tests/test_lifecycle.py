"""A run's life as a user drives it from a terminal: Ctrl-C or SIGTERM ends it with exit 130, what was
measured stored and the run marked interrupted (also under `demo`, whose children share the terminal);
a collector that does not answer stops the run before its first request, unless the run is asked to
spool only; a target given with the OpenAI clients' `/v1` is the same server; a read command never makes a
store where none was."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from siliconbench.agent.options import agent_config
from siliconbench.core.errors import ExitCode
from tests.servers import PY, REPO, HeldPort, Proc, start_collector, start_sim

# a run that would take minutes: a signal always arrives while its load is under way
LONG_PLAN = ("--concurrency", "1", "--requests-per-step", "100000", "--duration-s", "300", "--repetitions", "1",
             "--warmup-requests", "0", "--input-tokens", "16", "--output-tokens", "4")
DEMO_LONG_PLAN = ("--concurrency", "1", "--requests-per-step", "100000", "--input-tokens", "16", "--output-tokens", "4")
LOAD_UNDER_WAY = re.compile(r"run (\S+): target http")  # the agent's line just before the first step


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    server = start_sim(tmp_path_factory.mktemp("sim") / "sim.log", "--ttft-ms", "5", "--itl-ms", "1")
    yield server
    server.stop()


def cli(program: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", f"siliconbench.{program}", *args], capture_output=True, text=True,
                          timeout=240, cwd=REPO, stdin=subprocess.DEVNULL)


def run_state(store: str, run_id: str) -> str:
    listed = cli("collector", "runs", "--store", store)
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(run_id)]
    return line.split()[3]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_agent_run_with_130_and_the_run_stored_as_interrupted(tmp_path, sim, sig):
    store = f"chdb://{tmp_path}/data"
    collector = start_collector(store, tmp_path / "collector.log")
    agent = Proc.start("agent", ["-m", "siliconbench.agent", "run", "--target", sim.url, "--collector",
                                 collector.address, "--spool-dir", str(tmp_path / "spool"), *LONG_PLAN],
                       tmp_path / "agent.log")
    run_id = agent.wait_log(LOAD_UNDER_WAY).group(1)
    agent.popen.send_signal(sig)
    assert agent.wait(120) == ExitCode.INTERRUPTED, agent.log()[-3000:]
    assert f"run {run_id} interrupted" in agent.log() and "Traceback" not in agent.log()
    assert collector.stop() == 0
    assert run_state(store, run_id).startswith("interrupted")


def test_ctrl_c_at_the_terminal_of_demo_stores_the_run_as_interrupted(tmp_path):
    """Ctrl-C reaches every process of the terminal's foreground group: here, demo's whole group."""
    store = f"chdb://{tmp_path}/data"
    with open(tmp_path / "demo.log", "w") as log:
        demo = subprocess.Popen([PY, "-m", "siliconbench.collector", "demo", "--store", store, *DEMO_LONG_PLAN],
                                stdout=subprocess.DEVNULL, stderr=log, cwd=REPO, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    watched = Proc("demo", demo, tmp_path / "demo.log")
    try:
        run_id = watched.wait_log(LOAD_UNDER_WAY).group(1)
        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(120) == ExitCode.INTERRUPTED, watched.log()[-3000:]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert run_state(store, run_id).startswith("interrupted"), watched.log()[-3000:]


def test_a_collector_that_does_not_answer_stops_the_run_before_its_first_request(tmp_path, sim):
    with HeldPort() as refused:
        result = cli("agent", "run", "--target", sim.url, "--collector", f"127.0.0.1:{refused.port}",
                     "--spool-dir", str(tmp_path / "spool"), *LONG_PLAN)
    assert result.returncode == ExitCode.COLLECTOR, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert f"the collector at 127.0.0.1:{refused.port} did not answer" in error and "--spool-only" in error
    assert not LOAD_UNDER_WAY.search(result.stderr)  # no request was sent


def test_spool_only_starts_the_load_without_a_collector_and_keeps_what_it_measured(tmp_path, sim):
    with HeldPort() as refused:
        agent = Proc.start("agent", ["-m", "siliconbench.agent", "run", "--target", sim.url, "--collector",
                                     f"127.0.0.1:{refused.port}", "--spool-only", "--spool-dir",
                                     str(tmp_path / "spool"), *LONG_PLAN], tmp_path / "agent.log")
        run_id = agent.wait_log(LOAD_UNDER_WAY).group(1)  # the load started though nothing answers there
        agent.popen.send_signal(signal.SIGINT)
        assert agent.wait(120) == ExitCode.INTERRUPTED, agent.log()[-3000:]
    assert f"run {run_id} interrupted" in agent.log() and "did not answer" not in agent.log()
    assert any((tmp_path / "spool").rglob("*")), "what was measured stays in the spool"


def test_a_target_given_with_v1_is_the_server_itself_and_the_log_says_so(sim):
    result = cli("agent", "probe", "--target", f"{sim.url}/v1/")
    assert result.returncode == 0, result.stderr
    assert f"target: {sim.url} version" in result.stdout
    assert f"--target {sim.url}/v1/: using {sim.url}" in result.stderr


def test_agent_run_takes_a_target_with_v1_as_the_server_itself():
    node = agent_config(target="http://vllm:8000/v1", collector="127.0.0.1:50051", scenario=None, tls_ca=None,
                        tls_cert=None, tls_key=None)
    assert node.target == "http://vllm:8000"


@pytest.mark.parametrize("command", [("report",), ("compare", "--run", "a", "--run", "b"), ("runs",),
                                     ("runs", "list"), ("export",), ("sql", "SELECT 1"), ("prices", "list"),
                                     ("run", "report", "--run", "x")])
def test_a_read_command_refuses_a_store_path_that_does_not_exist(tmp_path, command):
    missing = tmp_path / "mistyped"
    result = cli("collector", *command, "--store", f"chdb://{missing}")
    assert result.returncode == ExitCode.STORE, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"error: no store at chdb://{missing}: check --store "
                                                      "(`serve` and `demo` make one where they are told to)")
    assert not missing.exists()
