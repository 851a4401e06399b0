"""Real server processes for tests, each on a port the kernel picked.

A collector is started with `--listen 127.0.0.1:0` and a simulator with `--port 0`; each names the
port it bound in its "listening on" log line, and the test reads it there. (Picking a free port,
closing it and passing its number to a server races with everything else on the machine that binds
or connects meanwhile.) The line is logged only once the server accepts connections, so it is also
the readiness signal.

Where a test needs a port before its server exists, or across a server's restart, `HeldPort` keeps
one bound for the whole test without listening on it: connections to it are refused, nothing else can
take it, and a collector can still listen on it (gRPC binds with SO_REUSEPORT).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

PY = sys.executable
REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 120.0  # process start-up on a loaded 2-core machine; the wait ends as soon as the line is there


@dataclass
class Proc:
    """A child process with its stdout lines in a queue and its log (stderr) in a file."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    lines: queue.Queue = field(default_factory=queue.Queue)

    @classmethod
    def start(cls, name: str, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> Self:
        with open(log_path, "a") as log:  # the child keeps its own copy of the descriptor
            popen = subprocess.Popen([PY, *args], stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO,
                                     env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})
        proc = cls(name, popen, log_path)
        threading.Thread(target=proc._pump, daemon=True).start()
        return proc

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.strip())

    def wait_line(self, prefix: str, timeout_s: float = 60.0) -> str:
        """The next stdout line that starts with `prefix`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.popen.poll() is not None and self.lines.empty():
                    break
                continue
            if line.startswith(prefix):
                return line
        raise AssertionError(f"{self.name} printed no line starting {prefix!r}; its log:\n{self.log()[-3000:]}")

    def wait_log(self, pattern: re.Pattern[str], since: int = 0, timeout_s: float = READY_TIMEOUT_S) -> re.Match[str]:
        """The first match of `pattern` in the log from character `since` on, once it is there."""
        deadline = time.monotonic() + timeout_s
        while True:
            exited = self.popen.poll() is not None  # before reading: a line logged just before exiting still counts
            if match := pattern.search(self.log(), since):
                return match
            if exited or time.monotonic() > deadline:
                state = f"exited with code {self.popen.returncode}" if exited else f"still silent after {timeout_s:.0f} s"
                raise AssertionError(f"{self.name} {state}, no {pattern.pattern!r} in its log:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout_s)

    def wait(self, timeout_s: float = 60.0) -> int:
        return self.popen.wait(timeout_s)

    def log(self) -> str:
        return self.log_path.read_text()


@dataclass
class Server(Proc):
    """A server process and the address (host:port) it announced."""

    address: str = ""

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def start_server(name: str, args: list[str], log_path: Path) -> Server:
    """`python ARGS...` for a server that logs "<name> listening on [http://]HOST:PORT" once it accepts
    connections; returns when it has."""
    since = len(log_path.read_text()) if log_path.exists() else 0  # a restarted server appends to the same log
    server = Server.start(name, args, log_path)
    server.address = server.wait_log(re.compile(rf"{name} listening on (?:http://)?(\S+:\d+)"), since).group(1)
    return server


def start_collector(store: str, log_path: Path, *options: str, port: int = 0) -> Server:
    """`siliconbench-collector serve` on `port` (0: the kernel picks one), taking streams when this returns."""
    return start_server("collector", ["-m", "siliconbench.collector", "serve", "--listen", f"127.0.0.1:{port}",
                                      "--store", store, *options], log_path)


def start_sim(log_path: Path, *options: str) -> Server:
    """`siliconbench-agent sim --port 0 OPTIONS...`, answering when this returns."""
    return start_server("simulator", ["-m", "siliconbench.agent", "sim", "--port", "0", *options], log_path)


def start_node(collector: str, workdir: Path, node: str, scenario: str, instance_type: str, *sim_options: str) -> list[Proc]:
    """An agent daemon and the simulator (`sim_options`) beside it, as one EKS node; both to stop."""
    sim = start_sim(workdir / f"{node}-sim.log", *sim_options)
    env = {"SILICONBENCH_NODE_NAME": node, "SILICONBENCH_SCENARIO": scenario, "SILICONBENCH_INSTANCE_TYPE": instance_type}
    daemon = Proc.start(f"daemon {node}", ["-m", "siliconbench.agent", "daemon", "--target", sim.url, "--collector",
                                           collector, "--spool-dir", str(workdir / node)], workdir / f"{node}-daemon.log", env)
    return [daemon, sim]


def make_store(store: str) -> str:
    """An empty store at `store` (chdb://PATH), made in a process of its own: chDB allows one store a process."""
    subprocess.run([PY, "-c", "import sys; from siliconbench.collector.store import Store; Store.open(sys.argv[1])",
                    store], check=True, timeout=READY_TIMEOUT_S, cwd=REPO)
    return store


class HeldPort:
    """A loopback port kept bound, never listening, until `close()`: see the module docstring."""

    def __init__(self, port: int = 0) -> None:
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port: int = self._socket.getsockname()[1]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._socket.close()
