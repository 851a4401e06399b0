"""A search probe's readings from the store: what the agent's search judges each probe on
(Control.ProbeReadings; agent/search/stored.py asks).

A probe pools the request rows of its steps (its extensions; a verification also the earlier probes at
its value). Of a closed loop's step only the steady part is judged, as the agent states it
(agent/search/probe.py `steady_part`): the requests sent from the start of its C-th request on that ended
by the first end after its last send; a step with no more than C requests has none. Each SLO's point
estimate and one-sided 95 % bounds are order statistics of the pooled samples, at the ranks
core/slo_bounds.py `order_ranks` gives; the error rate's bounds are Clopper-Pearson over the pooled
requests. The pooled figures are computed from the rows of the probe's steps only, exactly (sorted, never
averaged from per-step figures): what a probe shows is all it costs.

The reply waits until the store holds every request row the agent made in those steps (it says how many;
the collector acknowledges only stored rows, so they are there once its batches are acknowledged), looking
after each group the collector writes, and every LOOK_EVERY_S (rows another replica wrote); past the
request's wait it fails DEADLINE_EXCEEDED and the agent judges on its
own records, saying so. A step with more rows than the agent made (the run id reused) fails
FAILED_PRECONDITION: its readings would mix two runs. The same SQL on chDB and on a server: the requests
table is a plain MergeTree, read as it is (no FINAL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from siliconbench.collector.store import Store
from siliconbench.core.errors import ConfigError
from siliconbench.core.limits import MAX_ID_CHARS, MAX_TEXT_CHARS
from siliconbench.core.slo import ERROR_RATE, Objective, parse_slos
from siliconbench.core.slo_bounds import order_ranks, proportion_bound, proportion_lower
from siliconbench.core.wire import pb

MAX_STEPS = 256        # steps one probe pools (a search's extensions and verification stay far below)
MAX_WAIT_S = 30.0
LOOK_EVERY_S = 0.1  # the store is looked at after each of the collector's writes, and at least this often

# The probe's judged rows: every row of a step judged whole, the steady part of a closed loop's.
_JUDGED = """
SELECT r.* FROM (
    SELECT error_class, ttft_ns, e2e_ns, output_tokens, chunk_offset_ns, chunk_kinds, first_answer_ns,
        first_reasoning_ns, first_tool_call_ns, step, toUnixTimestamp64Nano(start_time) AS start_ns,
        start_ns + e2e_ns AS end_ns
    FROM {db}.requests
    WHERE run_id = {run:String} AND agent_id = {agent:String} AND has({steps:Array(UInt32)}, step)
) AS r
INNER JOIN (
    SELECT step, count() AS n, transform(step, {steps:Array(UInt32)}, {streams:Array(UInt32)}, toUInt32(0)) AS c,
        arraySort(groupArray(toUnixTimestamp64Nano(start_time))) AS starts,
        if(c > 0 AND n > c, starts[c], 0) AS full_from,
        arrayMax(starts) AS last_send,
        arrayFilter(e -> e > last_send, groupArray(toUnixTimestamp64Nano(start_time) + e2e_ns)) AS later,
        if(empty(later), last_send, arrayMin(later)) AS drain_at
    FROM {db}.requests
    WHERE run_id = {run:String} AND agent_id = {agent:String} AND has({steps:Array(UInt32)}, step)
    GROUP BY step
) AS w ON r.step = w.step
WHERE w.c = 0 OR (w.n > w.c AND r.start_ns >= w.full_from AND r.end_ns <= w.drain_at)
"""

# Each latency metric's samples as the agent states them (core/slo.py): (value, taken when), of successful rows.
_NO_KINDS = "empty(chunk_kinds) AND first_reasoning_ns = 0 AND first_tool_call_ns = 0"
_SAMPLES = {
    "ttft": ("ttft_ns / 1e6", "ttft_ns >= 0"),
    "ttfa": (f"multiIf(first_answer_ns > 0, first_answer_ns / 1e6, {_NO_KINDS}, ttft_ns / 1e6, inf)",
             f"NOT (first_answer_ns <= 0 AND {_NO_KINDS} AND ttft_ns < 0)"),
    "tpot": ("(e2e_ns - ttft_ns) / 1e6 / (output_tokens - 1)", "output_tokens >= 2 AND ttft_ns >= 0"),
    "e2e": ("e2e_ns / 1e6", "1"),
}
_GAPS = "arrayMap(g -> g / 1e6, arrayPopFront(arrayDifference(chunk_offset_ns)))"  # ITL: one sample per gap


@dataclass(frozen=True, slots=True)
class Query:
    """A checked ProbeReadingsRequest."""

    run_id: str
    agent_id: str
    steps: tuple[int, ...]
    streams: tuple[int, ...]   # per step: its steady concurrency (0: every request judged)
    made: tuple[int, ...]      # per step: the request records the agent made
    objectives: tuple[Objective, ...]
    wait_s: float

    @classmethod
    def of(cls, request: pb.ProbeReadingsRequest) -> Query:
        """The request checked; ConfigError naming what is wrong."""
        for name, value in (("run_id", request.run_id), ("agent_id", request.agent_id)):
            if not value or len(value) > MAX_ID_CHARS or not value.isprintable():
                raise ConfigError(f"{name} must be 1 to {MAX_ID_CHARS} printable characters")
        if not 0 < len(request.steps) <= MAX_STEPS:
            raise ConfigError(f"give the probe's steps: 1 to {MAX_STEPS}, got {len(request.steps)}")
        steps = tuple(s.step for s in request.steps)
        if len(set(steps)) != len(steps):
            raise ConfigError("a step is given twice")
        if len(request.slo) > MAX_TEXT_CHARS:
            raise ConfigError(f"slo is longer than {MAX_TEXT_CHARS} characters")
        objectives = parse_slos(request.slo, flag="slo")
        if not (math.isfinite(request.wait_s) and 0 <= request.wait_s <= MAX_WAIT_S):
            raise ConfigError(f"wait_s must be between 0 and {MAX_WAIT_S:g} s, got {request.wait_s}")
        return cls(request.run_id, request.agent_id, steps, tuple(s.steady_concurrency for s in request.steps),
                   tuple(s.requests for s in request.steps), objectives, request.wait_s)

    def params(self) -> dict:
        return {"run": self.run_id, "agent": self.agent_id, "steps": list(self.steps), "streams": list(self.streams)}


def missing(store: Store, query: Query) -> int:
    """How many of the probe's request rows the store does not hold yet; ConfigError when a step holds more
    rows than the agent made."""
    stored = dict(store.query(
        "SELECT step, count() FROM {db}.requests WHERE run_id = {run:String} AND agent_id = {agent:String} "
        "AND has({steps:Array(UInt32)}, step) GROUP BY step", query.params()).result_rows)
    for step, made in zip(query.steps, query.made):
        if stored.get(step, 0) > made:
            raise ConfigError(f"the store holds {stored[step]} request rows of run {query.run_id!r} step {step}, "
                              f"the agent made {made}: the run id was used before; give each search its own")
    return sum(made - stored.get(step, 0) for step, made in zip(query.steps, query.made))


def read(store: Store, query: Query) -> pb.ProbeReadingsReply:
    """Every SLO's reading over the probe's judged rows (all of them stored: `missing` is 0)."""
    latency = sorted({o.metric for o in query.objectives if o.metric != ERROR_RATE})
    counts = ", ".join(["count()", "countIf(error_class != '')"] + [
        f"sumIf(length({_GAPS}), error_class = '')" if m == "itl" else f"countIf(error_class = '' AND {_SAMPLES[m][1]})"
        for m in latency])
    n, failures, *sizes = store.query(f"SELECT {counts} FROM ({_JUDGED})", query.params()).result_rows[0]
    samples = dict(zip(latency, sizes))
    ranks = {o.key: order_ranks(samples[o.metric], o.q) for o in query.objectives if o.metric != ERROR_RATE}
    values: dict[str, list[float]] = {}
    if ranks:
        sorts, picks, params = [], [], query.params()
        for i, metric in enumerate(latency):
            params[f"r{i}"] = [k or 0 for o in query.objectives if o.metric == metric for k in ranks[o.key]]
            sorts.append(f"arraySort(groupArrayArrayIf({_GAPS}, error_class = '')) AS s{i}" if metric == "itl" else
                         f"arraySort(groupArrayIf({_SAMPLES[metric][0]}, error_class = '' AND {_SAMPLES[metric][1]}))"
                         f" AS s{i}")
            picks.append(f"arrayMap(k -> if(k = 0, nan, s{i}[k]), {{r{i}:Array(UInt64)}})")
        row = store.query(f"SELECT {', '.join(picks)} FROM (SELECT {', '.join(sorts)} FROM ({_JUDGED}))",
                          params).result_rows[0]
        values = dict(zip(latency, (list(v) for v in row)))
    readings = []
    for o in query.objectives:
        if o.metric == ERROR_RATE:
            readings.append(pb.ProbeReading(
                key=o.key, point=failures / n if n else math.nan, samples=n,
                bound=proportion_bound(failures, n) if n else math.nan,
                lower=proportion_lower(failures, n) if n else math.nan))
            continue
        same = [p for p in query.objectives if p.metric == o.metric]
        point, bound, lower = values[o.metric][3 * same.index(o):3 * same.index(o) + 3]
        readings.append(pb.ProbeReading(key=o.key, point=point, bound=bound, lower=lower, samples=samples[o.metric]))
    return pb.ProbeReadingsReply(readings=readings, requests=n)
