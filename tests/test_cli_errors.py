"""No traceback reaches a user: every command, driven through the mistakes a user makes (a target that
accepts TCP and never answers, one that refuses, one that is not a vLLM, a port held by another socket, a
missing file, a bad store URL, an unknown run id, Ctrl-C), ends with one line saying what happened and what
to do, and the documented exit code (siliconbench.core.errors.ExitCode).

The commands run as the programs do (`python -m ...`), all at once on a few threads: the hanging cases
wait out the 10 s probe bound together rather than one after another.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from siliconbench.core.errors import ExitCode
from tests.servers import HeldPort, make_store, start_collector

PROGRAMS = {"agent": "siliconbench.agent", "collector": "siliconbench.collector"}
BAD_STORE = "foo://nowhere"


@dataclass(frozen=True)
class Case:
    program: str
    args: tuple[str, ...]
    code: ExitCode
    says: str  # a part of the one error line


def run(program: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", PROGRAMS[program], *args], capture_output=True, text=True,
                          timeout=240, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def held() -> socket.socket:
    """A loopback port held by a listening socket that never accepts: a busy port to servers, and a target
    that completes the TCP handshake (the kernel's backlog) and never answers."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=64)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def not_vllm(tmp_path_factory) -> str:
    """An HTTP server that is not a vLLM: every API path is 404."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def collector(tmp_path_factory) -> str:
    """A real collector on loopback, for the run ids it does not know."""
    served = tmp_path_factory.mktemp("served")
    server = start_collector(f"chdb://{served}/data", served / "collector.log")
    try:
        yield server.address
    finally:
        server.stop(60)


@pytest.fixture(scope="module")
def refused() -> int:
    """A loopback port bound and never listening: connections to it are refused."""
    with HeldPort() as port:
        yield port.port


def cases(held_port: int, refused_port: int, not_vllm: str, collector: str, tmp: str) -> list[Case]:
    hanging, refused = f"127.0.0.1:{held_port}", f"127.0.0.1:{refused_port}"
    agent_run = ("run", "--spool-dir", f"{tmp}/spool", "--concurrency", "1", "--requests-per-step", "1",
                 "--repetitions", "1")
    return [
        Case("agent", (*agent_run, "--target", f"http://{hanging}"), ExitCode.TARGET, "did not answer within 10 s"),
        Case("agent", ("probe", "--target", f"http://{hanging}"), ExitCode.TARGET, "did not answer within 10 s"),
        Case("agent", (*agent_run, "--target", f"http://{refused}"), ExitCode.TARGET, "is unreachable"),
        Case("agent", ("probe", "--target", f"http://{refused}"), ExitCode.TARGET, "is unreachable"),
        Case("agent", (*agent_run, "--target", not_vllm), ExitCode.TARGET, "answered HTTP 404"),
        Case("agent", (*agent_run, "--target", "localhost:8000"), ExitCode.BAD_INPUT, "e.g. http://localhost:8000"),
        Case("agent", ("probe", "--target", "localhost:8000"), ExitCode.BAD_INPUT, "e.g. http://localhost:8000"),
        Case("agent", ("sim", "--port", str(held_port)), ExitCode.ADDRESS_IN_USE, "the port is in use"),
        Case("agent", (*agent_run, "--plan", f"{tmp}/missing.yaml"), ExitCode.BAD_INPUT, "missing.yaml"),
        Case("agent", ("daemon", "--plan-file", f"{tmp}/missing.yaml", "--spool-dir", f"{tmp}/spool"),
             ExitCode.BAD_INPUT, "missing.yaml"),
        Case("collector", ("serve", "--listen", hanging, "--store", f"chdb://{tmp}/serve"),
             ExitCode.ADDRESS_IN_USE, "the port is in use"),
        Case("collector", ("demo", "--target", f"http://{hanging}", "--store", f"chdb://{tmp}/demo"),
             ExitCode.TARGET, "did not answer within 10 s"),
        *[Case("collector", (*command, "--store", BAD_STORE), ExitCode.STORE, "--store 'foo://nowhere'")
          for command in (("report",), ("compare", "--run", "a", "--run", "b"), ("runs",), ("runs", "list"),
                          ("export",), ("prices", "list"), ("sql", "SELECT 1"), ("run", "report", "--run", "x"),
                          ("demo",))],
        Case("collector", ("prices", "import", f"{tmp}/missing.csv", "--store", f"chdb://{tmp}/prices"),
             ExitCode.BAD_INPUT, "missing.csv"),
        Case("collector", ("report", "--run", "nope", "--store", f"chdb://{tmp}/report"), ExitCode.BAD_INPUT,
             "no run matches"),
        *[Case("collector", (*command, "--collector", address), ExitCode.COLLECTOR, why)
          for address, why in ((hanging, "did not answer within 10 s"), (refused, "is unreachable"))
          for command in (("run", "status", "--run", "x"), ("run", "cancel", "--run", "x"), ("run", "agents"))],
        Case("collector", ("health", "--address", refused), ExitCode.COLLECTOR, "did not answer"),
        Case("collector", ("run", "cancel", "--run", "nope", "--collector", collector), ExitCode.BAD_INPUT,
             "no fleet run 'nope'"),
        Case("collector", ("run", "status", "--run", "nope", "--collector", collector), ExitCode.BAD_INPUT,
             "no fleet run 'nope'"),
    ]


@pytest.fixture(scope="module")
def outcomes(held, refused, not_vllm, collector, tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("mistakes"))
    make_store(f"chdb://{tmp}/report")
    todo = cases(held.getsockname()[1], refused, not_vllm, collector, tmp)  # a store each: chDB allows one process
    with ThreadPoolExecutor(max_workers=6) as pool:
        done = list(pool.map(lambda case: run(case.program, *case.args), todo))
    return dict(zip(todo, done, strict=True))


def _id(case: Case) -> str:
    return f"{case.program} {' '.join(case.args[:3])} -> {case.code.name}"


@pytest.fixture(params=range(len(cases(1, 2, "", "", ""))), ids=lambda i: _id(cases(1, 2, "", "", "")[i]))
def case_index(request) -> int:
    return request.param


def test_each_mistake_is_one_line_with_its_exit_code(outcomes, case_index):
    case, result = list(outcomes.items())[case_index]
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == case.code, result.stderr
    assert errors and case.says in errors[0], result.stderr
    if case.args[0] != "demo":  # demo adds its own line after the agent's
        assert len(errors) == 1, result.stderr


def test_runs_on_an_empty_store_says_so(tmp_path):
    make_store(f"chdb://{tmp_path}/data")
    result = run("collector", "runs", "--store", f"chdb://{tmp_path}/data")
    assert result.returncode == 0 and result.stdout == ""
    assert "no runs in" in result.stderr and "demo" in result.stderr


def test_verbose_shows_the_traceback_above_the_line(tmp_path):
    for args in (("--verbose", "report"), ("report", "-v")):
        result = run("collector", *args, "--store", BAD_STORE)
        assert result.returncode == ExitCode.STORE
        assert "Traceback" in result.stderr and result.stderr.splitlines()[-1].startswith("error: --store")


def test_ctrl_c_is_one_line_and_exit_130():
    """The agent is interrupted while it waits on a target that never answers (it has connected: an event)."""
    waiting = socket.create_server(("127.0.0.1", 0))
    child = subprocess.Popen([sys.executable, "-m", PROGRAMS["agent"], "probe", "--target",
                              f"http://127.0.0.1:{waiting.getsockname()[1]}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        waiting.settimeout(120)
        connection, _ = waiting.accept()
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
        connection.close()
    finally:
        waiting.close()
        if child.poll() is None:
            child.kill()
    assert child.returncode == ExitCode.INTERRUPTED, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("interrupted (Ctrl-C)")
