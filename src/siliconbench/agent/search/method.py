"""The search: bracket by doubling from the start until a probe fails, bisect to the tolerance, then
verify with a longer probe at the candidate (pooling the requests its short probe sent) and at the next
value above (unless a probe already failed at or below it on a lower bound: decided); the answer is the
largest value whose verification passed. A closed loop's short probe screens first with an eighth of its
requests, so a value far over a limit fails on few. Each probe is judged on its one-sided 95 % bounds (judge.py): it passes on
its upper bounds, fails on a lower bound; one with too few samples for a bound, or with a limit between
its bounds, is extended (pooling its requests, each extension doubling them) up to `extensions` times,
then said undecided: neither a pass nor a fail. The search goes on above an undecided value as above a
pass; where undecided values lie between the largest pass and the smallest fail, the answer says the
boundary is undecided between those two.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from siliconbench.agent.errors import AgentSaturated
from siliconbench.agent.search.judge import EXTEND, FAIL, INCONCLUSIVE, Reading, Verdict, judge
from siliconbench.agent.search.stored import ReadProbe, own_readings
from siliconbench.core.search import PASS, UNDECIDED, SearchOptions, undecided_between
from siliconbench.core.slo import ERROR_RATE, Objective
from siliconbench.core.slo_bounds import samples_needed
from siliconbench.core.wire import pb

METHOD = ("bracket by doubling until a probe fails; bisect to the tolerance; verify with a {verify}x longer "
          "probe at the candidate (its earlier requests pooled) and at the next value above unless a probe "
          "failed at or below it on a lower bound; a probe passes when every SLO's one-sided 95 % upper bound (order statistics; "
          "Clopper-Pearson for the error rate) is within its limit, fails when a lower bound is over it, and "
          "is extended while neither, then undecided")


@dataclass(frozen=True, slots=True)
class Measured:
    """What one probe step gave: its judged requests (a closed loop's steady part), the rate they
    completed at, and the saturation signs (empty: none)."""

    records: Sequence[pb.RequestRecord]
    achieved_rps: float = 0.0
    offered_rps: float = 0.0  # the rate the requests were sent at (0: the probed value)
    output_tps: float = 0.0
    over_saturated: str = ""
    client_saturated: str = ""
    step: pb.ProbeStep | None = None  # the step as the store holds it (None: a prober with no store behind it)


SCREEN = 8  # a screening step sends this share of a probe's requests: 1/8

# (value, requests, probe index) -> what the probe step measured
Prober = Callable[[float, int, int], Awaitable[Measured]]


@dataclass(slots=True)
class Probe:
    index: int  # its number in the search, from 0
    value: float
    phase: str  # bracket, bisect or verify
    requests: int
    steps: int
    verdict: Verdict
    output_tps: float
    achieved_rps: float
    readings_from: str = ""  # stored.FROM_STORE: read from the collector's store; else why the agent's own


@dataclass(slots=True)
class Answer:
    control: str
    objectives: tuple[Objective, ...]
    method: str
    tolerance: float
    boundary: float | None = None  # None: not even the start met the SLOs
    verified: bool = False
    probes: list[Probe] = field(default_factory=list)
    # the smallest failing value above the boundary, where the probes between them could not decide
    # (else the largest undecided value); None: the data decided within the tolerance
    undecided_to: float | None = None

    def undecided(self) -> list[float]:
        """The values the probes could not decide between the boundary and `undecided_to`."""
        return undecided_between(self.control, self.tolerance, self.boundary,
                                 ((p.value, p.verdict.name) for p in self.probes))[1]

    def at_boundary(self) -> Probe | None:
        """The probe that answers: the boundary's verification (else its last passing probe)."""
        passing = [p for p in self.probes if p.value == self.boundary and p.verdict.passed]
        verified = [p for p in passing if p.phase == "verify"]
        chosen = verified or passing
        return chosen[-1] if chosen else None

    def binding(self) -> Reading | None:
        """At the boundary, the SLO with the least headroom (bound / limit closest to 1)."""
        probe = self.at_boundary()
        if probe is None:
            return None
        return max(probe.verdict.readings, key=lambda r: (r.bound or 0) / r.objective.limit)


class Search:
    def __init__(self, objectives: Sequence[Objective], options: SearchOptions, prober: Prober, *,
                 output_tokens: int, on_probe: Callable[[Probe], None] = lambda probe: None,
                 on_step: Callable[[Probe], None] = lambda probe: None, read: ReadProbe | None = None) -> None:
        """`on_step` gets the probe as judged after each of its steps (its verdict "extend" or
        "inconclusive" while more steps follow), `on_probe` the probe once judged for good; `read` gives a
        probe's readings (stored.py: from the collector's store; default: the agent's own records)."""
        self._objectives = tuple(objectives)
        self._options = options
        self._prober = prober
        self._on_probe = on_probe
        self._on_step = on_step
        self._step = 0
        self._read = read or own_readings(objectives)
        self._verdicts: dict[float, str] = {}
        # each value's requests and their steps, for its verification
        self._pooled: dict[float, tuple[list[pb.RequestRecord], list[pb.ProbeStep]]] = {}
        self.answer = Answer(options.control, self._objectives, METHOD.format(verify=options.verify_factor),
                             options.tolerance)
        self._requests = self._base_requests(output_tokens)

    def _base_requests(self, output_tokens: int) -> int:
        """Enough requests for every SLO's bound on a probe: a per-request percentile needs
        `samples_needed` requests, an ITL one that many gaps; the error rate is bounded at any count."""
        needed = self._options.min_requests
        for o in self._objectives:
            if o.metric == ERROR_RATE:
                continue
            per = 1 if o.metric != "itl" else max(output_tokens - 1, 1)
            needed = max(needed, math.ceil(samples_needed(o.q) / per))
        return needed

    def _ramp(self, value: float) -> int:
        return 2 * int(value) if self._options.control == "concurrency" else 0  # a closed loop's ramps

    async def _probe(self, value: float, phase: str) -> Probe:
        """Probe `value`: a closed loop's short probe first screens with an eighth of a probe's requests (a
        value far over a limit fails on its lower bound there); then up to a probe's requests (a
        verification's: `verify_factor` times, the earlier probes' requests at the value pooled), then each
        extension doubles the requests pooled."""
        options = self._options
        target = self._requests * (options.verify_factor if phase == "verify" else 1)
        records: list[pb.RequestRecord] = []
        pooled_steps: list[pb.ProbeStep] = []
        if phase == "verify" and value in self._pooled:
            records, pooled_steps = list(self._pooled[value][0]), list(self._pooled[value][1])
        screen = phase != "verify" and options.control == "concurrency"
        want = max(options.min_requests, math.ceil(target / SCREEN)) if screen else target
        steps, tps, rps = 0, 0.0, 0.0
        while True:
            measured = await self._prober(value, max(want - len(records), options.min_requests) + self._ramp(value),
                                          self._step)
            self._step += 1
            steps += 1
            if measured.client_saturated:
                raise AgentSaturated(f"search stopped at {options.control} {value:g}: the agent itself "
                                     f"could not keep up ({measured.client_saturated}); this is not the server's "
                                     "capacity: give --workers N (more sending processes) or a node with more "
                                     "free cores")
            records.extend(measured.records)
            if measured.step is not None:
                pooled_steps.append(measured.step)
            tps, rps = measured.output_tps, measured.achieved_rps
            offered = (measured.offered_rps or value) if options.control == "rate" else 0.0
            readings, readings_from = await self._read(pooled_steps, records)
            verdict = judge(self._objectives, records, offered_rps=offered, achieved_rps=rps,
                            over_saturated=measured.over_saturated, readings=readings)
            want = target if len(records) < target else 2 * len(records)
            if verdict.name in (EXTEND, INCONCLUSIVE) and steps > options.extensions + screen:
                verdict = Verdict(UNDECIDED, f"{verdict.name} after {steps} steps: {verdict.reason}", verdict.readings)
            probe = Probe(len(self.answer.probes), value, phase, len(records), steps, verdict, tps, rps, readings_from)
            self._on_step(probe)
            if verdict.name not in (EXTEND, INCONCLUSIVE):
                break
        self._pooled[value] = (records, pooled_steps)
        self.answer.probes.append(probe)
        self._on_probe(probe)
        return probe

    async def _judged(self, value: float, phase: str) -> str:
        """The verdict at `value`, probing it unless a short probe already did."""
        if value not in self._verdicts:
            self._verdicts[value] = (await self._probe(value, phase)).verdict.name
        return self._verdicts[value]

    async def run(self) -> Answer:
        options, answer = self._options, self.answer
        low = None  # the largest value that passed
        high = None  # the smallest value that failed
        below = None  # the largest value that did not fail (passed or undecided): the search goes on above it
        value = options.start
        while True:  # bracket
            verdict = await self._judged(value, "bracket")
            if verdict not in (PASS, UNDECIDED):
                high = value
                break
            below = value
            low = value if verdict == PASS else low
            if value >= options.max:
                break
            value = min(value * 2, options.max)
        while below is not None and high is not None and high - below > options.step_above(below):  # bisect
            mid = self._middle(below, high)
            verdict = await self._judged(mid, "bisect")
            if verdict in (PASS, UNDECIDED):
                below = mid
                low = mid if verdict == PASS else low
            else:
                high = mid
        while low is not None:  # past undecided values: bisect between the largest pass and what did not pass
            above = min((v for v, name in self._verdicts.items() if v > low and name != PASS), default=math.inf)
            if above == math.inf or above - low <= options.step_above(low):
                break
            mid = self._middle(low, above)
            if await self._judged(mid, "bisect") == PASS:
                low = mid
        if low is not None:
            await self._verify(low)
        self._undecided()
        return answer

    def _middle(self, low: float, high: float) -> float:
        mid = (low + high) / 2
        return float(math.floor(mid)) if self._options.control == "concurrency" else mid

    async def _verify(self, low: float) -> None:
        """Verify the candidate `low`, and the next value above once it holds; step down while the
        candidate's longer probe does not pass."""
        options, answer = self._options, self.answer
        not_verified = math.inf
        for _ in range(3):
            if (await self._probe(low, "verify")).verdict.passed:
                answer.boundary, answer.verified = low, True
                above = low + options.step_above(low)
                decided = any(p.value <= above and p.verdict.name == FAIL and any(
                    r.lower is not None and r.lower > r.objective.limit for r in p.verdict.readings)
                    for p in answer.probes)  # failed on a lower bound; a rate's shortfall is a point estimate
                if above <= options.max and not decided and (await self._probe(above, "verify")).verdict.passed:
                    answer.boundary = above
                return
            not_verified = low
            low -= options.step_above(low)
            if low < options.start:
                break
        # no verification passed: the largest value a short probe passed below the failed verifications,
        # said to be unverified
        passed = [v for v, name in self._verdicts.items() if name == PASS and v < not_verified]
        answer.boundary = max(passed) if passed else None

    def _undecided(self) -> None:
        """Where undecided probes lie between the boundary and the smallest failure above it, further
        than the tolerance, the answer is undecided up to that failure (or the largest undecided value)."""
        answer = self.answer
        answer.undecided_to, _ = undecided_between(answer.control, answer.tolerance, answer.boundary,
                                                   ((p.value, p.verdict.name) for p in answer.probes))
