"""What a client costs the node, measured the same way for any client: the CPU seconds of a process and all
its descendants (the agent's worker processes included) and the peak resident memory of this process and of
its largest waited-for child."""

from __future__ import annotations

import resource

import psutil


def tree_cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds so far of process `pid` (default: this one) and its live descendants."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in (root, *root.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def peak_rss_mb() -> float:
    """The peak RSS of this process, or of its largest waited-for child if that was larger (MiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024
