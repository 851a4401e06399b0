"""The main job: a complete local benchmark in one command.

Starts the collector on embedded chDB and a target (the simulator unless a real vLLM URL is
given), runs a short sweep with the agent, stops everything cleanly, and returns the run id;
the data stays in the store for reports and SQL.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import tempfile
import sys
import time
import urllib.request
from collections.abc import Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from siliconbench.collector.errors import CollectorError
from siliconbench.core.errors import ExitCode

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_failed(message: str, code: int) -> CollectorError:
    """The demo's error when a child failed: its message is already above, so the demo exits with its code."""
    failed = CollectorError(message)
    failed.exit_code = ExitCode(code) if code in set(ExitCode) else ExitCode.INTERNAL
    return failed


def wait_for_collector(address: str, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise child_failed(f"the collector exited with code {process.returncode} before it was ready",
                                   process.returncode)
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise CollectorError(f"the collector at {address} was not ready within {timeout_s:.0f} s")


def wait_for_http(url: str, process: subprocess.Popen | None, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise child_failed(f"the target process exited with code {process.returncode} before it was ready",
                               process.returncode)
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise CollectorError(f"{url} did not answer within {timeout_s:.0f} s")


@contextlib.contextmanager
def process(args: list[str], name: str) -> Iterator[subprocess.Popen]:
    """A child process that is stopped (SIGTERM, then SIGKILL after 15 s) when the block ends."""
    child = subprocess.Popen(args)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within 15 s; killing it", name)
                child.kill()
                child.wait()


def run_demo(store: str, target: str | None, agent_args: list[str], sim_args: list[str]) -> str:
    """Run the whole pipeline; return the run id. The collector is stopped before this returns,
    so the embedded store is free for the report."""
    py = sys.executable
    collector_address = f"127.0.0.1:{free_port()}"
    with process([py, "-m", "siliconbench.collector", "serve", "--listen", collector_address, "--store", store], "collector") as col:
        wait_for_collector(collector_address, col)
        with contextlib.ExitStack() as stack:
            if target is None:
                port = free_port()
                target = f"http://127.0.0.1:{port}"
                sim = stack.enter_context(process([py, "-m", "siliconbench.agent", "sim", "--port", str(port), *sim_args], "simulator"))
                wait_for_http(f"{target}/health", sim)
            # A spool of its own: a failed earlier demo's leftovers must not flow into this store.
            spool = stack.enter_context(tempfile.TemporaryDirectory(prefix="siliconbench-demo-spool-"))
            agent = subprocess.run([py, "-m", "siliconbench.agent", "run", "--target", target, "--collector", collector_address,
                                    "--spool-dir", spool, *agent_args], stdout=subprocess.PIPE, text=True)
            if agent.returncode != 0:
                raise child_failed(f"the agent failed (exit code {agent.returncode}); see its messages above",
                                   agent.returncode)
        col.send_signal(signal.SIGTERM)
        if col.wait(30) != 0:
            raise CollectorError(f"the collector exited with code {col.returncode}")
    return agent.stdout.strip().splitlines()[-1]
