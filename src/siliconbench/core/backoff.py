"""Exponential back-off for reconnect and restart loops: one helper for the agent's shipper and samplers.

Each delay is the current step drawn within +-`jitter` of it (so many agents that lost the same collector
do not come back in step), and the step doubles up to `max_s`. A loop calls `reset()` once the thing it
retries worked again, so the next failure is a new outage starting from `first_s`, not the tail of the
last one. Retry libraries (tenacity) decorate calls; these loops are long-lived and decide themselves
when to reset, so they keep their loops and share this.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first_s: float, max_s: float, jitter: float = 0.0) -> None:
        if not 0 < first_s <= max_s:
            raise ValueError(f"a back-off needs 0 < first ({first_s}) <= max ({max_s})")
        if not 0 <= jitter < 1:
            raise ValueError(f"a back-off's jitter is a fraction in [0, 1), not {jitter}")
        self.first_s, self.max_s, self.jitter = first_s, max_s, jitter
        self._step = first_s

    def next(self) -> float:
        """The delay before the next try; the step after it is twice as long (at most `max_s`)."""
        delay = self._step * (1 + self.jitter * (2 * random.random() - 1))
        self._step = min(self._step * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._step = self.first_s
