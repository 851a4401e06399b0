"""A step's verdict from the evidence of what the client did to the load: one definition for the agent,
which judges each step as it ends (agent/load/step.py, its console line), and the collector, which states
the same words beside the step's figures from the evidence stored with it (collector/reports/findings.py).

client-limited  the client changed the load it was asked to offer:
                - its dispatch delay (send time − scheduled time; closed loop: a slot freeing → its next
                  send, the ramp of each slot's first send after the step's start left out) has a p99 of
                  at least CLIENT_DELAY_MS and that p99 is at least CLIENT_DELAY_SHARE
                  of the step's typical request time (closed loop: the median E2E) or arrival interval
                  (open loop): 5 ms late on 2 s requests changes nothing, 5 ms on 20 ms requests does;
                  in an open-loop step with a concurrency cap the delay is the cap's wait, not the client's;
                - or a sending process used at least SENDER_CPU_PCT of one core: its event loop can no
                  longer keep up with what it is asked.
node busy       the agent's event loop ran late (loop-lag p99 of at least LOOP_LAG_MS) while the client
                sent on time: a node whose cores another process (the server) keeps busy. Arrival times on
                plain HTTP are the kernel's receive stamps (agent/transport.py), which loop lag does not
                move, so the figures stand; the measured cause is named (node, server and agent CPU).
ok              neither.
"""

from __future__ import annotations

from dataclasses import dataclass

CLIENT_DELAY_MS = 5.0      # p99 of the dispatch delay over a step
CLIENT_DELAY_SHARE = 0.02  # ... and at least this share of the typical request time (or arrival interval)
SENDER_CPU_PCT = 90.0      # of one core, the busiest sending process
LOOP_LAG_MS = 5.0          # event-loop lag, p99 over the step

OK, CLIENT_LIMITED, NODE_BUSY = "ok", "client-limited", "node busy"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a step's verdict rests on. CPU figures: `sender_cpu_pct` and `agent_cpu_pct` in % of one core,
    `node_cpu_pct` in % of all the node's cores, `server_cpu_pct` in % of one core (None: the server's
    processes are not on this node, or not known)."""

    client_delay_p99_ms: float
    client_delay_share: float     # of the typical request time or arrival interval; 0 where it does not count
    sender_cpu_pct: float         # the busiest sending process
    loop_lag_p99_ms: float
    agent_cpu_pct: float | None = None
    node_cpu_pct: float | None = None
    server_cpu_pct: float | None = None
    lost: str = ""                # a sending process died during the step: what happened

    @property
    def delay_limited(self) -> bool:
        return self.client_delay_p99_ms >= CLIENT_DELAY_MS and self.client_delay_share >= CLIENT_DELAY_SHARE

    @property
    def verdict(self) -> str:
        if self.lost or self.delay_limited or self.sender_cpu_pct >= SENDER_CPU_PCT:
            return CLIENT_LIMITED
        if self.loop_lag_p99_ms >= LOOP_LAG_MS:
            return NODE_BUSY
        return OK

    def reasons(self) -> str:
        """Why, in words (empty for ok): the thresholds crossed, and for node busy the measured cause."""
        verdict = self.verdict
        if verdict == CLIENT_LIMITED:
            out = [self.lost] if self.lost else []
            if self.delay_limited:
                out.append(f"dispatch delay p99 {self.client_delay_p99_ms:.1f} ms, {self.client_delay_share:.0%} "
                           "of a request's time")
            if self.sender_cpu_pct >= SENDER_CPU_PCT:
                out.append(f"a sending process used {self.sender_cpu_pct:.0f}% of a core")
            return ", ".join(out) + f"; {self.cause()}"
        if verdict == NODE_BUSY:
            return (f"event-loop lag p99 {self.loop_lag_p99_ms:.1f} ms while the client sent on time "
                    f"(dispatch delay p99 {self.client_delay_p99_ms:.1f} ms); {self.cause()}")
        return ""

    def cause(self) -> str:
        """Where the node's CPU went over the step, as measured (a client delayed by a busy node says so)."""
        parts = []
        if self.node_cpu_pct is not None:
            parts.append(f"node CPU {self.node_cpu_pct:.0f}% of all cores")
        if self.server_cpu_pct is not None:
            parts.append(f"the server's processes {self.server_cpu_pct:.0f}% of a core")
        if self.agent_cpu_pct is not None:
            parts.append(f"the agent {self.agent_cpu_pct:.0f}% of a core")
        return ", ".join(parts) or "no CPU figures measured"

    def sentence(self) -> str:
        """The verdict and its reasons, as the console, the report's notes and its headline say it."""
        reasons = self.reasons()
        return f"{self.verdict}: {reasons}" if reasons else self.verdict


def delay_share(client_delay_p99_ms: float, typical_ms: float) -> float:
    """The dispatch delay's p99 as a share of the step's typical request time or arrival interval (0 when
    there is none to compare with: no request finished)."""
    return client_delay_p99_ms / typical_ms if typical_ms > 0 else 0.0
