"""One search run: its probes driven as steps of a started load generator (agent/app.py `run_plan`), and
what it says: a line per probe, the final block, or one JSON object."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import aiohttp

from siliconbench.agent.load.sink import RecordSink
from siliconbench.agent.load.step import LoadGenerator
from siliconbench.agent.search.method import Answer, Probe, Search
from siliconbench.core.search import FROM_STORE, SearchOptions
from siliconbench.agent.search.probe import ProbeSink, StepProber
from siliconbench.agent.search.stored import StoredReadings, StoreReader
from siliconbench.agent.target import TargetInfo
from siliconbench.core.limits import MAX_TEXT_CHARS
from siliconbench.core.plan import Plan
from siliconbench.core.slo import Objective, parse_slos
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)


def plan_search(plan: Plan, search_id: str) -> SearchRun:
    """The search a plan's `search:` section asks for (a fleet run's nodes), each probe logged."""
    assert plan.search is not None
    return SearchRun(parse_slos(plan.search.slo, flag="search.slo"), plan.search, plan, search_id,
                     on_probe=lambda probe: log.info("search %s: %s", search_id,
                                                     probe_line(plan.search.control if plan.search else "", probe)))


class SearchRun:
    """Pass `through` and `drive` to run_plan (agent/app.py); `answer` holds the result once it returned."""

    def __init__(self, objectives: tuple[Objective, ...], options: SearchOptions, plan: Plan, search_id: str,
                 on_probe: Callable[[Probe], None] = lambda probe: None) -> None:
        self._search_id = search_id
        self._objectives = objectives
        self._options = options
        self._plan = plan
        self._on_probe = on_probe
        self._sink: ProbeSink | None = None
        self._store: StoreReader | None = None  # reads each probe from the collector's store (the shipper)
        self.answer: Answer | None = None

    def through(self, sink: RecordSink) -> ProbeSink:
        self._sink = ProbeSink(sink)
        self._store = sink if isinstance(sink, StoreReader) else None
        return self._sink

    async def drive(self, generator: LoadGenerator, session: aiohttp.ClientSession, target: TargetInfo) -> None:
        sink = self._sink
        assert sink is not None, "run_plan calls through() before drive()"
        await generator.start()
        try:
            prober = StepProber(generator, sink, session, self._plan, self._options.control, target.base_url)
            search = Search(self._objectives, self._options, prober, output_tokens=self._plan.output_tokens,
                            on_probe=self._on_probe,
                            on_step=lambda probe: sink.judged(probe_message(probe, self._search_id)),
                            read=StoredReadings(self._store, self._search_id, self._objectives)
                            if self._store is not None else None)
            try:
                answer = await search.run()
                sink.result = result_message(answer, self._search_id)
                log.info("search %s:\n%s", self._search_id, final_block(answer))
            finally:
                self.answer = search.answer
        finally:
            sink.release()
            await generator.close()


def probe_message(probe: Probe, search_id: str) -> pb.SearchProbe:
    """A probe as its step carries it (StepEvent.search_probe)."""
    readings = probe.verdict.readings
    return pb.SearchProbe(
        search_id=search_id, index=probe.index, value=probe.value, phase=probe.phase, verdict=probe.verdict.name,
        reason=probe.verdict.reason[:MAX_TEXT_CHARS], requests=probe.requests,
        slo_keys=[r.objective.key for r in readings], slo_limits=[r.objective.limit for r in readings],
        slo_points=[_or_nan(r.point) for r in readings], slo_bounds=[_or_nan(r.bound) for r in readings],
        readings_from=probe.readings_from[:MAX_TEXT_CHARS])


def result_message(answer: Answer, search_id: str) -> pb.SearchResult:
    """The answer as the run's end event carries it (RunEvent.search)."""
    at, binding = answer.at_boundary(), answer.binding()
    readings = at.verdict.readings if at is not None else ()
    return pb.SearchResult(
        search_id=search_id, control=answer.control, method=answer.method, tolerance=answer.tolerance,
        slo=",".join(f"{o.key}<={o.limit:g}" for o in answer.objectives),
        found=answer.boundary is not None, boundary=answer.boundary or 0.0, verified=answer.verified,
        binding=binding.objective.key if binding is not None else "",
        slo_keys=[r.objective.key for r in readings], slo_bounds=[_or_nan(r.bound) for r in readings],
        headroom=[1 - r.bound / r.objective.limit if r.bound is not None else math.nan for r in readings],
        output_tps=at.output_tps if at is not None else 0.0, rps=at.achieved_rps if at is not None else 0.0,
        probes=len(answer.probes))


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _value(control: str, value: float) -> str:
    return f"{value:g}" if control == "concurrency" else f"{value:.3g} req/s"


def probe_line(control: str, probe: Probe) -> str:
    """A probe's live line: value, requests, each bound against its SLO, verdict."""
    readings = "; ".join(r.show() for r in probe.verdict.readings)
    # where the readings came from; why not from the store is logged once (stored.py) and in the JSON
    source = (" read from the store" if probe.readings_from == FROM_STORE else
              " (the agent's own readings)" if probe.readings_from else "")
    return (f"probe {probe.index + 1} ({probe.phase}) {control} {_value(control, probe.value)}: "
            f"{probe.requests} requests{source}; {readings} -> {probe.verdict.name.upper()}"
            + ("" if probe.verdict.passed else f" ({probe.verdict.reason})"))


def final_block(answer: Answer) -> str:
    control = answer.control
    lines = []
    at = answer.at_boundary()
    if answer.undecided_to is not None:
        values = ", ".join(_value(control, v) for v in answer.undecided())
        lines.append(f"largest {control} within SLO: undecided "
                     + (f"up to {_value(control, answer.undecided_to)}" if answer.boundary is None else
                        f"between {_value(control, answer.boundary)} and {_value(control, answer.undecided_to)}")
                     + f": at {values} the data could not decide, every extension taken.")
    if answer.boundary is None or at is None:
        first = answer.probes[0] if answer.probes else None
        why = first.verdict.reason if first is not None else "no probe ran"
        start = _value(control, first.value) if first is not None else "the start"
        if answer.undecided_to is None:
            lines.append(f"no load within SLO: at {control} {start} {why}")
    else:
        binding = answer.binding()
        assert binding is not None
        lines.append(f"{'Largest pass:' if answer.undecided_to is not None else f'largest {control} within SLO:'} "
                     f"{_value(control, answer.boundary)} ({'verified' if answer.verified else 'NOT verified'}).")
        o = binding.objective
        lines.append(f"Binding: {o.label} (bound {o.show(binding.bound or 0)} of {o.show(o.limit)}).")
        for r in at.verdict.readings:
            if r is not binding and r.bound is not None:
                headroom = 1 - r.bound / r.objective.limit
                lines.append(f"{r.objective.label} {r.objective.show(r.bound)} ({headroom:.0%} headroom).")
        lines.append(f"At {_value(control, answer.boundary)}: {at.output_tps:,.0f} output tok/s, "
                     f"{at.achieved_rps:.1f} req/s.")
    lines.append(f"Method: {answer.method}; tolerance {answer.tolerance:.0%}"
                 + (" or one stream." if control == "concurrency" else "."))
    return "\n".join(lines)


def as_json(answer: Answer, search_id: str) -> str:
    binding = answer.binding()

    def bounds(probe: Probe) -> dict[str, Any]:
        return {r.objective.key: {"point": r.point, "bound": r.bound, "lower": r.lower, "limit": r.objective.limit,
                                  "samples": r.samples} for r in probe.verdict.readings}

    return json.dumps({
        "search_id": search_id, "control": answer.control, "boundary": answer.boundary,
        "verified": answer.verified, "binding": binding.objective.key if binding else None,
        "undecided_to": answer.undecided_to, "undecided": answer.undecided(),
        "slo": {o.key: o.limit for o in answer.objectives}, "method": answer.method,
        "tolerance": answer.tolerance,
        "probes": [{"index": p.index, "value": p.value, "phase": p.phase, "requests": p.requests, "steps": p.steps,
                    "verdict": p.verdict.name, "reason": p.verdict.reason, "bounds": bounds(p),
                    "readings_from": p.readings_from,
                    "output_tps": p.output_tps, "achieved_rps": p.achieved_rps} for p in answer.probes],
    })
