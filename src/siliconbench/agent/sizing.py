"""How many processes send the load with `workers: auto` (the default), and when the agent stops because
it cannot keep up.

The rule (also in `siliconbench-agent run --help` and the README):

- Usable cores: those this process may run on (its CPU affinity: a cpuset, taskset), and under a cgroup
  CPU limit (a container's) no more than that limit, rounded up.
- At the start: one process per `STREAMS_PER_WORKER` streams of the plan's largest step (a closed-loop
  step's concurrency, an open-loop step's cap; an uncapped open-loop step counts as one stream), at
  least one and at most the usable cores. One process means the agent's own; more are worker processes
  (siliconbench.agent.workers), while the shipper and the samplers stay in the agent's.
- After each step of at least `MIN_STEP_S` (a shorter one's CPU share is noise: a batch sealed or a sampler
  polled in it can look like a busy core): when the busiest sending process used more than `GROW_AT_CPU_PCT`
  of a core, the next steps are sent by enough processes to bring it to `TARGET_CPU_PCT`, at most the usable
  cores.
- Stop: when a sending process reached the saturation threshold (`SENDER_CPU_PCT`, core/verdict.py)
  with every usable core already sending, the run stops after that step (its records are stored, flagged
  saturated) with `AgentSaturated`: more steps would measure the agent.

CPU, not the event loop's lag, decides: the lag also counts other processes on the node, which more
processes would not help, while a sending process's CPU is its own work alone. The step's timings are
the kernel's receive times (agent/transport.py), so a busy process delays sends rather than stamps;
`STREAMS_PER_WORKER` keeps the first step's processes well below saturation: on a 2-core machine, 32
streams at 10 ms between tokens cost one process 10-12 % of a core.

`workers: N` keeps N processes throughout: saturated steps are flagged and the run goes on.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from siliconbench.agent.errors import AgentSaturated
from siliconbench.core.plan import Plan
from siliconbench.core.verdict import SENDER_CPU_PCT

STREAMS_PER_WORKER = 64
GROW_AT_CPU_PCT = 50.0   # of one core, the busiest sending process over a step
TARGET_CPU_PCT = 35.0
MIN_STEP_S = 1.0         # shorter steps decide nothing
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup (v2) CPU limit, rounded up."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def initial_workers(plan: Plan, cores: int) -> int:
    """The processes that send the plan's first step (see the module docstring)."""
    streams = max(spec.concurrency or 1 for spec in plan.step_specs())
    return max(1, min(cores, math.ceil(streams / STREAMS_PER_WORKER)))


def workers_after_step(workers: int, cores: int, busiest_cpu_pct: float, wall_s: float, step: int,
                       label: str) -> int:
    """The processes for the next steps after a step of `wall_s` seconds whose busiest sending process used
    `busiest_cpu_pct` of a core; raises AgentSaturated where no more cores can help (see the module docstring)."""
    if wall_s < MIN_STEP_S:
        return workers
    if busiest_cpu_pct >= SENDER_CPU_PCT and workers >= cores:
        raise AgentSaturated(
            f"step {step} ({label}): the agent's busiest sending process used {busiest_cpu_pct:.0f}% of a core with "
            f"all {cores} usable cores sending ({workers} processes), so its own delays would enter the figures; "
            "the run stops here (the step is stored, judged client-limited). Give the agent more cores (its CPU limit "
            "or cpuset), lower the load, or pass --workers N to go on with such steps flagged")
    if busiest_cpu_pct <= GROW_AT_CPU_PCT:
        return workers
    return max(workers, min(cores, math.ceil(workers * busiest_cpu_pct / TARGET_CPU_PCT)))
