"""When the load generator itself may have limited a step, and the reason in words: one definition
for the agent, which flags the step as it runs (agent/selfmon.py), and the collector, which states the
flag beside every figure of the step (collector/reports/findings.py) from the step's stored figures.

The thresholds: at 90 % of one core the event loop can no longer keep up with what it is asked; a
p99 loop lag above 5 ms delays sends by as much, and where the agent's stamps are the loop's own (TLS)
time stamps too (a 10 ms ITL would read 10-50 % high); with the kernel's receive times (plain HTTP on
Linux, agent/transport.py) a lag longer than the gap between two chunks makes one read carry both,
timed as the later;
in an open-loop step without a concurrency cap the dispatch delay (send − scheduled) is the client's
own, and a p99 above 5 ms means the offered load was not the one asked for.
"""

from __future__ import annotations

SATURATED_CPU_PCT = 90.0     # of one core
SATURATED_LAG_MS = 5.0       # event-loop lag, p99 over the step
SATURATED_DISPATCH_MS = 5.0  # open loop, no cap: p99 of send time − scheduled time


def saturation_reasons(cpu_pct: float, loop_lag_p99_ms: float, dispatch_p99_ms: float,
                       dispatch_counts: bool) -> list[str]:
    """Each threshold the step crossed, in words; empty when none. `dispatch_counts`: the step's
    dispatch delay is the client's own (open loop without a concurrency cap)."""
    out = []
    if cpu_pct >= SATURATED_CPU_PCT:
        out.append(f"agent CPU {cpu_pct:.0f}% of a core")
    if loop_lag_p99_ms >= SATURATED_LAG_MS:
        out.append(f"event-loop lag p99 {loop_lag_p99_ms:.1f} ms")
    if dispatch_counts and dispatch_p99_ms >= SATURATED_DISPATCH_MS:
        out.append(f"dispatch delay p99 {dispatch_p99_ms:.1f} ms")
    return out
