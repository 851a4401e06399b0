"""Where the node's CPU went over a span: the node, the agent's processes, the target's processes
(agent/nodewatch.py), against a real process listening on a loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from siliconbench.agent.nodewatch import NodeWatch

# A "server": listens on a port it prints, then burns CPU in a child process until its stdin closes. The
# child burns only while its parent lives: a parent killed outright leaves no orphan burning a core.
BUSY_SERVER = """
import multiprocessing, os, socket, sys
def burn(parent):
    while os.getppid() == parent:
        pass
if __name__ == "__main__":
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
    multiprocessing.Process(target=burn, args=(os.getpid(),), daemon=True).start()
    print(s.getsockname()[1], flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def busy_server():
    proc = subprocess.Popen([sys.executable, "-c", BUSY_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.stdin.close()  # its main returns and multiprocessing ends the burner
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_the_target_s_processes_and_their_children_are_measured_apart_from_the_agent(busy_server):
    watch = NodeWatch(f"http://127.0.0.1:{busy_server}")
    start = watch.mark()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # the agent's own work: busy too, but not the server's
        pass
    cpu = watch.between(start, watch.mark())
    assert cpu.server_pct is not None and cpu.server_pct >= 20  # its child burns a core, when the node lets it
    assert cpu.agent_pct >= 20
    assert 0 < cpu.node_pct <= 100


def test_a_target_on_another_node_has_no_server_figure():
    watch = NodeWatch("http://192.0.2.1:8000")  # TEST-NET-1: never this node
    cpu = watch.between(watch.mark(), watch.mark())
    assert cpu.server_pct is None and cpu.agent_pct >= 0


def test_a_port_nobody_listens_on_has_no_server_figure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening
        watch = NodeWatch(f"http://127.0.0.1:{port}")
        assert watch.between(watch.mark(), watch.mark()).server_pct is None
