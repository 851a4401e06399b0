"""How a target says it is the simulator: the header the simulator (siliconbench/agent/sim/server.py) puts
on every response, and the agent (siliconbench/agent/target.py) reads, so that a run against it is stored
and reported as simulated."""

from __future__ import annotations

SIMULATOR_HEADER = "X-Siliconbench-Simulator"  # its value is "1"
