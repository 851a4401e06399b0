"""Where the node's CPU went over each step: the node's cores, the agent's processes and the target's
server processes, for the step's verdict (core/verdict.py: a node busy with the server is not a client
that limited the load).

Read from the kernel's cumulative CPU counters (psutil) at the step's start and end, so every step gets
its figures however short it is, with no sampling thread. The server's processes are the ones listening
on the target's port, with their children (vLLM's engine core is a child of its API server), found once
when the target is on this node; elsewhere (another node, another container's PID namespace) the server's
CPU is unknown and said so.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

log = logging.getLogger(__name__)

_Tree = dict[tuple[int, float], float]  # (pid, create time) -> CPU seconds used so far


@dataclass(frozen=True, slots=True)
class Mark:
    """The counters at one instant."""

    node_busy_s: float
    node_total_s: float
    wall_s: float
    agent: _Tree
    server: _Tree


@dataclass(frozen=True, slots=True)
class NodeCpu:
    """CPU over a span: the node in % of all its cores; the agent and the server in % of one core."""

    node_pct: float
    agent_pct: float
    server_pct: float | None  # None: the server's processes are not on this node


class NodeWatch:
    def __init__(self, target_url: str) -> None:
        self._server_roots = _listeners(target_url)
        self._agent_root = psutil.Process(os.getpid())
        if self._server_roots:
            log.info("the target's processes on this node: %s", ", ".join(str(p.pid) for p in self._server_roots))

    def mark(self) -> Mark:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        total = sum(times)
        server = _tree(self._server_roots)  # a server the agent started is the server's, not the agent's
        agent = {k: v for k, v in _tree([self._agent_root]).items() if k not in server}
        return Mark(total - idle, total, time.monotonic(), agent, server)

    def between(self, start: Mark, end: Mark) -> NodeCpu:
        wall = end.wall_s - start.wall_s
        node_total = end.node_total_s - start.node_total_s
        node = 100.0 * (end.node_busy_s - start.node_busy_s) / node_total if node_total > 0 else 0.0
        return NodeCpu(node_pct=max(node, 0.0), agent_pct=_used(start.agent, end.agent, wall),
                       server_pct=_used(start.server, end.server, wall) if self._server_roots else None)


def _used(start: _Tree, end: _Tree, wall_s: float) -> float:
    """% of one core the processes of `end` used since `start` (one that started since: all its time)."""
    if wall_s <= 0:
        return 0.0
    return 100.0 * sum(max(cpu - start.get(key, 0.0), 0.0) for key, cpu in end.items()) / wall_s


def _tree(roots: list[psutil.Process]) -> _Tree:
    out: _Tree = {}
    for root in roots:
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in members:
            try:
                t = p.cpu_times()
                out[(p.pid, p.create_time())] = t.user + t.system
            except psutil.Error:
                continue  # ended (or not ours to read) between the listing and the read
    return out


def _listeners(target_url: str) -> list[psutil.Process]:
    """The processes listening on the target's port, where the target's host is this node; none otherwise
    (or where the kernel does not say who listens)."""
    parts = urlsplit(target_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        hosts = {ipaddress.ip_address(str(a[4][0]).split("%")[0])
                 for a in socket.getaddrinfo(parts.hostname or "localhost", port, proto=socket.IPPROTO_TCP)}
        local = {ipaddress.ip_address(a.address.split("%")[0]) for addrs in psutil.net_if_addrs().values()
                 for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)}
        if not any(h.is_loopback or h in local for h in hosts):
            return []
        pids = {c.pid for c in psutil.net_connections("tcp")
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}
        return [psutil.Process(pid) for pid in sorted(pids) if pid != os.getpid()]
    except (OSError, ValueError, psutil.Error) as e:
        log.info("the target's processes on this node are not known (%s): the server's CPU is not measured", e)
        return []
