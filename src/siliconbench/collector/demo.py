"""The main job: a complete local benchmark in one command.

Starts the collector on embedded chDB and a target (the simulator unless a real vLLM URL is
given), runs a short sweep with the agent, stops everything cleanly, and returns the run id;
the data stays in the store for reports and SQL.

The servers are started on port 0 and tell their address in their "listening on" log line
(`server_process`), so no port is picked here and then raced for. The agent runs the plan it is given
(`demo`'s flags over `options.DEMO_PLAN`) as a plan file; the simulator and the agent keep their own
defaults for what the flags leave out.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import TextIO
from pathlib import Path

from siliconbench.collector.errors import CollectorError
from siliconbench.collector.store import Store
from siliconbench.core.errors import ExitCode
from siliconbench.core.plan import Plan

log = logging.getLogger(__name__)

LISTENING = re.compile(r"listening on (?:https?://)?(\S+:\d+)")  # the servers' log line (collector, simulator)


def child_failed(message: str, code: int) -> CollectorError:
    """The demo's error when a child failed: its message is already above, so the demo exits with its code."""
    failed = CollectorError(message)
    failed.exit_code = ExitCode(code) if code in set(ExitCode) else ExitCode.INTERNAL
    return failed


@contextlib.contextmanager
def server_process(args: list[str], name: str, timeout_s: float = 60.0,
                   log_to: TextIO | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """A child server told to listen on port 0: the process and the HOST:PORT its "listening on" log line
    reports. Its standard error is passed on to `log_to` (default: ours); it is stopped when the block
    ends (`process`)."""
    with process(args, name, stderr=subprocess.PIPE) as child:
        told: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pass_on, args=(child, told, log_to or sys.stderr), name=f"{name}-stderr",
                         daemon=True).start()
        try:
            address = told.get(timeout=timeout_s)
        except queue.Empty:
            raise CollectorError(f"the {name} did not say where it listens within {timeout_s:.0f} s") from None
        if address is None:
            code = child.wait()
            raise child_failed(f"the {name} exited with code {code} before it was listening", code)
        yield child, address


def _pass_on(child: subprocess.Popen, told: queue.Queue[str | None], log_to: TextIO) -> None:
    """Copy the child's standard error to `log_to`; put the first listening address on `told`, None at its end."""
    assert child.stderr is not None
    listening = False
    for raw in child.stderr:
        line = raw.decode(errors="replace")
        log_to.write(line)
        log_to.flush()
        found = None if listening else LISTENING.search(line)
        if found:
            listening = True
            told.put(found.group(1))
    told.put(None)


@contextlib.contextmanager
def process(args: list[str], name: str, stderr: int | None = None) -> Iterator[subprocess.Popen]:
    """A child process that is stopped (SIGTERM, then SIGKILL after 15 s) when the block ends. It runs in a
    session of its own, so a Ctrl-C at the terminal reaches only us: we stop the children in order (the
    agent first, while the collector still takes what it delivers)."""
    child = subprocess.Popen(args, stderr=stderr, start_new_session=True)
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


def run_demo(store: str, target: str | None, plan: Plan, agent_args: list[str], sim_args: list[str]) -> str:
    """Run the whole pipeline with `plan`; return the run id. `agent_args` and `sim_args` are further flags of
    `siliconbench-agent run` and `sim`. The collector is stopped before this returns, so the embedded store
    is free for the report."""
    py = sys.executable
    with contextlib.ExitStack() as stack:
        col, collector_address = stack.enter_context(server_process(
            [py, "-m", "siliconbench.collector", "serve", "--listen", "127.0.0.1:0", "--store", store], "collector"))
        if target is None:
            _, address = stack.enter_context(server_process(
                [py, "-m", "siliconbench.agent", "sim", "--port", "0", *sim_args], "simulator"))
            target = f"http://{address}"
        # A spool of its own: a failed earlier demo's leftovers must not flow into this store.
        spool = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="siliconbench-demo-")))
        (spool / "plan.json").write_text(plan.to_json(), encoding="utf-8")
        agent = subprocess.Popen([py, "-m", "siliconbench.agent", "run", "--target", target, "--collector",
                                  collector_address, "--spool-dir", str(spool / "spool"), "--plan",
                                  str(spool / "plan.json"), *agent_args], stdout=subprocess.PIPE, text=True,
                                 start_new_session=True)
        said = _finish_agent(agent)
        if agent.returncode != 0:
            raise child_failed(f"the agent failed (exit code {agent.returncode}); see its messages above",
                               agent.returncode)
        col.send_signal(signal.SIGTERM)
        if col.wait(30) != 0:
            raise CollectorError(f"the collector exited with code {col.returncode}")
    return said.strip().splitlines()[-1]


def _finish_agent(agent: subprocess.Popen) -> str:
    """What the agent printed once it exited. A Ctrl-C meanwhile is passed on to it: it ends the run as
    interrupted and delivers what was measured to the collector, which runs until the agent is done."""
    try:
        said, _ = agent.communicate()
    except KeyboardInterrupt:
        agent.send_signal(signal.SIGINT)
        said, _ = agent.communicate()
    return said


def stored_requests(store: str, run_id: str) -> tuple[int, str]:
    """How many request rows the store holds for `run_id`, and where the store is (as shown to the user)."""
    opened = Store.open(store)
    rows = opened.query("SELECT count() FROM {db}.requests WHERE run_id = {r:String}", {"r": run_id}).result_rows
    return rows[0][0], opened.location.shown
