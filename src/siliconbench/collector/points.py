"""A sweep point: (mode, concurrency, rate), as the agent's `steps` table states each step.

Repetitions of the same point are summarised together (views.SWEEP_RESULTS); different points never
are. A closed-loop point is `concurrency` requests always in flight; an open-loop point (poisson or
constant arrivals) is `rate_rps` requests/s offered, at most `concurrency` in flight (0: no cap). So
`--rates 4,8` is two points even though both have concurrency 0, and a closed step at concurrency 8
differs from an open step capped at 8.

A step whose `steps` row never arrived (the run was cut before the step ended) has only what its
requests record, their concurrency: it reads as closed loop at that concurrency, or, when it is 0
(which only an uncapped open-loop step sends), as `UNKNOWN_OPEN`, "open loop (rate not recorded)".
"""

from __future__ import annotations

from dataclasses import dataclass

CLOSED = "closed"
UNKNOWN_OPEN = "open"  # an uncapped open-loop step whose steps row never arrived


@dataclass(frozen=True, slots=True)
class Point:
    mode: str
    concurrency: int
    rate_rps: float

    @classmethod
    def of(cls, row: dict) -> Point:
        """The point of a view row (step_results, sweep_results, node_sweep, ...)."""
        return cls(str(row.get("mode") or CLOSED), int(row.get("concurrency") or 0), float(row.get("rate_rps") or 0.0))

    @property
    def open_loop(self) -> bool:
        return self.mode != CLOSED

    @property
    def capped(self) -> bool:
        return not self.open_loop or self.concurrency > 0

    def label(self) -> str:
        """'concurrency 8', 'poisson 4 req/s', 'constant 8 req/s, cap 16'."""
        if not self.open_loop:
            return f"concurrency {self.concurrency}"
        if self.mode == UNKNOWN_OPEN:
            return "open loop (rate not recorded)"
        cap = f", cap {self.concurrency}" if self.concurrency else ""
        return f"{self.mode} {self.rate_rps:g} req/s{cap}"

    def load(self) -> float:
        """The size of the load, for ordering within a mode: concurrency (closed) or rate (open)."""
        return self.rate_rps if self.open_loop else float(self.concurrency)

    def order(self) -> tuple[bool, str, float, int]:
        """Closed points first, by concurrency; then open points by arrival, rate and cap."""
        return (self.open_loop, self.mode if self.open_loop else "", self.load(), self.concurrency)
