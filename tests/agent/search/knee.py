"""A server with a capacity knee as the search sees it through its probes: each probe's requests drawn
from the simulator profile's closed form (SimProfile.steady_ttft_ms) plus seeded noise, in no time.

Concurrency c: every request's TTFT is the closed-loop TTFT at c, plus exponential noise. Rate r: below
what the slots finish (slots / service) requests wait for nothing; past it the queue grows by
(r - capacity) requests each second, each waiting its share of a slot's service, and requests complete
at the capacity.
"""

from __future__ import annotations

import random

from siliconbench.agent.search.method import Measured
from siliconbench.agent.sim import SimProfile
from siliconbench.core.wire import pb

OUTPUT_TOKENS = 4


class KneeModel:
    def __init__(self, profile: SimProfile, control: str, seed: int, noise_ms: float = 2.0,
                 slow_share: float = 0.0, slow_ms: float = 0.0, slow_at_random: bool = False) -> None:
        self.profile = profile
        self.control = control
        self.rng = random.Random(seed)
        self.noise_ms = noise_ms
        # a slow tail: every (1 / slow_share)-th request slow_ms late, exactly that share of every probe (or,
        # `slow_at_random`, each request with that probability)
        self.slow_every = round(1 / slow_share) if slow_share and not slow_at_random else 0
        self.slow_share = slow_share if slow_at_random else 0.0
        self.slow_ms = slow_ms
        self.made = 0
        self.requests_sent = 0
        self.calls: list[tuple[float, int, int]] = []

    @property
    def service_ms(self) -> float:
        p = self.profile
        return p.ttft_ms + (OUTPUT_TOKENS - 1) * p.itl_ms

    @property
    def capacity_rps(self) -> float:
        return self.profile.slots / self.service_ms * 1000

    def _record(self, ttft_ms: float) -> pb.RequestRecord:
        ttft_ms += self.rng.expovariate(1 / self.noise_ms)
        self.made += 1
        if (self.slow_every and self.made % self.slow_every == 0) or (self.slow_share and self.rng.random() < self.slow_share):
            ttft_ms += self.slow_ms
        ttft_ns = int(ttft_ms * 1e6)
        gaps = [ttft_ns + int(i * self.profile.itl_ms * 1e6) for i in range(OUTPUT_TOKENS)]
        return pb.RequestRecord(ttft_ns=ttft_ns, e2e_ns=gaps[-1], output_tokens=OUTPUT_TOKENS, chunk_offset_ns=gaps)

    async def __call__(self, value: float, requests: int, index: int) -> Measured:
        self.calls.append((value, requests, index))
        self.requests_sent += requests
        if self.control == "concurrency":
            steady = requests - 2 * int(value)
            ttft = self.profile.steady_ttft_ms(int(value), 16, OUTPUT_TOKENS)
            return Measured([self._record(ttft) for _ in range(steady)], achieved_rps=0.0, output_tps=1.0)
        backlog_per_request = max(0.0, 1 - self.capacity_rps / value)  # requests queued per request sent
        wait_per_queued_ms = self.service_ms / self.profile.slots
        records = [self._record(self.profile.ttft_ms + i * backlog_per_request * wait_per_queued_ms)
                   for i in range(requests)]
        return Measured(records, achieved_rps=min(value, self.capacity_rps), output_tps=1.0)
