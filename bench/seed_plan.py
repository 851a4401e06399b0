"""The reference report's question, worked against simulators: which instance type serves Llama 4 Scout at
the lowest cost within the latency targets? (docs/plan.md)

The reference report (Llama 4 Scout on p5, p4d, g6e, trn2, inf2: scenarios A-E) publishes estimates,
not measurements. Here each scenario is a SIMULATED node shaped by its figures (`profile`): its TTFT for a
512-token prompt, its ITL, and how its throughput grows with concurrency (the scaling table: throughput at
concurrency c over throughput at 1 gives the simulator's slowdown per extra stream, fitted by least
squares), with 32 generation slots (the largest concurrency the report measured; past them requests
queue). The report's absolute tokens/s cannot be reproduced: one stream at an ITL of 8 ms makes at most
125 tokens/s, not the 4,200 it states for concurrency 1; its shape is what the simulators keep.

Each node is searched for its largest concurrency within the SLOs by the agent's own search (bracket,
bisect, verify; agent/search/method.py), each probe's requests drawn from the simulator profile's closed
form (SimProfile.steady_ttft_ms, steady_itl_ms) plus seeded exponential noise, in virtual time: a
real-time search needs free cores (on a shared 2-core machine the agent, sharing the cores with the
simulators, sends late and refuses to publish the probe as the server's), and this one is the same on any machine.
Probes, requests and answers go through the collector's ingest (TelemetryService) into an embedded store,
exactly as an agent's batches do, under each node's instance type and scenario, marked SIMULATED; `plan`
then reads them like any stored search, once at the store's dated list prices and once at the report's own
(a price file written beside the store), and the report's estimates are set beside both.

    .venv/bin/python bench/seed_plan.py --store chdb://./seed-store [--output-tokens 128] [--write-docs]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import datetime as dt
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from siliconbench.agent.search.method import Measured, Search  # noqa: E402
from siliconbench.agent.search.probe import ProbeSink  # noqa: E402
from siliconbench.agent.search.run import probe_message, result_message  # noqa: E402
from siliconbench.agent.sim import SimProfile  # noqa: E402
from siliconbench.collector.ingest import hello_row  # noqa: E402
from siliconbench.collector.prices import ensure_prices  # noqa: E402
from siliconbench.collector.service import TelemetryService  # noqa: E402
from siliconbench.collector.store import Store  # noqa: E402
from siliconbench.core.plan import Plan  # noqa: E402
from siliconbench.core.search import SearchOptions, SearchPlan  # noqa: E402
from siliconbench.core.slo import parse_slos  # noqa: E402
from siliconbench.core.wire import pb  # noqa: E402

SCOUT = "meta-llama/Llama-4-Scout-17B-16E"
CONCURRENCY = (1, 4, 8, 16, 32)  # the report's scaling table
SLOTS = 32
INPUT_TOKENS = 512  # the report's TTFT is for a 512-token prompt
SLO = "ttft_p99_ms<=800,itl_p99_ms<=60"
LOAD = "40 req/s"


@dataclass(frozen=True)
class Seed:
    """One scenario as the report states it (Scout; its §1-§5 tables)."""

    scenario: str
    instance_type: str
    ttft_ms: float
    itl_ms: float
    tokens_per_s: tuple[float, ...]  # at CONCURRENCY
    usd_per_hour: float
    usd_per_million: float


SEEDS = (
    Seed("A", "p5.48xlarge", 120, 8, (4200, 14800, 24500, 35200, 42000), 98.32, 0.85),
    Seed("B", "p4d.24xlarge", 280, 18, (1800, 5600, 8400, 11200, 12800), 21.96, 0.72),
    Seed("C", "g6e.48xlarge", 350, 22, (1400, 4200, 6800, 8500, 9200), 54.91, 0.52),
    Seed("D", "trn2.48xlarge", 150, 10, (3500, 12500, 21000, 30800, 38500), 45.00, 0.35),
    Seed("E", "inf2.48xlarge", 200, 14, (2800, 9800, 16200, 22400, 28000), 12.89, 0.28),
)


def slowdown_per_stream(seed: Seed) -> float:
    """The simulator's slowdown per extra stream that fits the report's scaling table: with c streams each
    runs slowdown(c) = c x T(1) / T(c) times slower, and slowdown(c) = 1 + s (c - 1); s by least squares."""
    pairs = [(c - 1, c * seed.tokens_per_s[0] / t - 1) for c, t in zip(CONCURRENCY, seed.tokens_per_s) if c > 1]
    return round(sum(x * y for x, y in pairs) / sum(x * x for x, _ in pairs), 4)


def profile(seed: Seed) -> SimProfile:
    return SimProfile(model=SCOUT, ttft_ms=seed.ttft_ms, itl_ms=seed.itl_ms, slots=SLOTS,
                      slowdown_per_stream=slowdown_per_stream(seed))


def sim_flags(p: SimProfile) -> list[str]:
    return ["--model", p.model, "--ttft-ms", f"{p.ttft_ms:g}", "--itl-ms", f"{p.itl_ms:g}", "--slots", str(p.slots),
            "--slowdown-per-stream", f"{p.slowdown_per_stream:g}"]


NOISE_MS = 2.0  # mean of the exponential noise on each TTFT (and a tenth of it on each gap)
BATCH = 20_000  # requests per ingest batch


class Items:
    """What an agent hands its shipper, by kind (agent/load/sink.py RecordSink)."""

    def __init__(self) -> None:
        self.runs: list[pb.RunEvent] = []
        self.steps: list[pb.StepEvent] = []
        self.requests: list[pb.RequestRecord] = []

    def add(self, item: pb.RunEvent | pb.StepEvent | pb.RequestRecord) -> None:
        {pb.RunEvent: self.runs, pb.StepEvent: self.steps, pb.RequestRecord: self.requests}[type(item)].append(item)


class ClosedForm:
    """A simulator node as a concurrency search's probes see it, in virtual time: at concurrency c each
    request's TTFT is SimProfile.steady_ttft_ms (past the slots, the mean wait for one: every request waits it) and each gap steady_itl_ms,
    plus seeded exponential noise; requests go out back to back on c streams."""

    def __init__(self, profile: SimProfile, run_id: str, output_tokens: int, sink: ProbeSink, start_ns: int) -> None:
        self.profile, self.run_id, self.output_tokens, self.sink = profile, run_id, output_tokens, sink
        self.rng = random.Random(run_id)
        self.now_ns = start_ns

    def _record(self, step: int, c: int, i: int, start_ns: int) -> pb.RequestRecord:
        p, rng = self.profile, self.rng
        ttft = p.steady_ttft_ms(c, INPUT_TOKENS, self.output_tokens) + rng.expovariate(1 / NOISE_MS)
        offsets = [int(ttft * 1e6)]
        for _ in range(self.output_tokens - 1):
            offsets.append(offsets[-1] + int((p.steady_itl_ms(c) + rng.expovariate(10 / NOISE_MS)) * 1e6))
        return pb.RequestRecord(
            run_id=self.run_id, request_id=f"{self.run_id}/{step}/{i}", step=step, concurrency=c,
            start_unix_ns=start_ns, ttft_ns=offsets[0], e2e_ns=offsets[-1], chunk_offset_ns=offsets,
            chunk_tokens=[1] * len(offsets), prompt_tokens=INPUT_TOKENS, output_tokens=self.output_tokens,
            finish_reason="length", http_status=200, model=p.model, first_answer_ns=offsets[0])

    async def __call__(self, value: float, requests: int, index: int) -> Measured:
        c = int(value)
        records = []
        stream_free = [self.now_ns] * c  # each stream sends its next request when its last one ended
        for i in range(requests):
            s = min(range(c), key=stream_free.__getitem__)
            record = self._record(index, c, i, stream_free[s])
            stream_free[s] += record.e2e_ns
            records.append(record)
        end_ns = max(stream_free)
        for record in records:
            self.sink.add(record)
        self.sink.add(pb.StepEvent(run_id=self.run_id, step=index, concurrency=c, mode="closed", requests=requests,
                                   start_unix_ns=self.now_ns, end_unix_ns=end_ns))
        steady = records[c:-c] or records  # as the agent judges a closed loop: all streams in flight
        seconds = (end_ns - self.now_ns) / 1e9
        self.now_ns = end_ns
        mean_e2e_s = statistics.fmean(r.e2e_ns for r in steady) / 1e9
        return Measured(steady, achieved_rps=c / mean_e2e_s, output_tps=requests * self.output_tokens / seconds)


def search_plan(output_tokens: int, start: int) -> Plan:
    """The plan a node's `siliconbench-agent search` stores with its run (its workload and its search)."""
    return Plan(concurrency=(), rates=(1.0,), input_tokens=INPUT_TOKENS, output_tokens=output_tokens, model=SCOUT,
                search=SearchPlan(slo=SLO, control="concurrency", start=float(start), max=64.0))


async def search_node(seed: Seed, output_tokens: int, start: int, start_ns: int) -> tuple[Items, pb.SearchResult]:
    """Scenario `seed`'s node searched as `siliconbench-agent search` does, its items as the agent sends them."""
    items = Items()
    sink = ProbeSink(items)
    run_id = f"seed-{seed.scenario}-{seed.instance_type}"
    plan = search_plan(output_tokens, start)
    sink.add(pb.RunEvent(run_id=run_id, phase=pb.PHASE_START, time_unix_ns=start_ns, target_url="sim://" + seed.scenario,
                         model=SCOUT, simulated=True, scenario=seed.scenario, config_json=plan.to_json()))
    node = ClosedForm(profile(seed), run_id, output_tokens, sink, start_ns)
    options = SearchOptions(control="concurrency", start=float(start), max=64.0)
    search = Search(parse_slos(SLO), options, node, output_tokens=output_tokens,
                    on_step=lambda probe: sink.judged(probe_message(probe, run_id)))
    result = sink.result = result_message(await search.run(), run_id)
    sink.add(pb.RunEvent(run_id=run_id, phase=pb.PHASE_END, time_unix_ns=node.now_ns, outcome="complete",
                         requests_sent=len(items.requests)))
    return items, result


def store_node(service: TelemetryService, store: Store, seed: Seed, items: Items) -> None:
    """The node's Hello, then its items in batches, through the collector's ingest."""
    agent = f"sim-{seed.scenario.lower()}"
    store.insert("nodes", [hello_row(pb.Hello(agent_id=agent, node_name=agent, instance_type=seed.instance_type,
                                              accelerator_kind="none"))], f"hello/{agent}")
    parts = [items.requests[i:i + BATCH] for i in range(0, len(items.requests), BATCH)] or [[]]
    for seq, part in enumerate(parts, 1):
        last = seq == len(parts)
        batch = pb.Batch(seq=seq, batch_id=f"{agent}/{items.runs[0].run_id}/{seq}", requests=part,
                         runs=items.runs if last else [], steps=items.steps if last else [])
        failed = service.inserter.write([service.parse(agent, pb.AgentMessage(batch=batch).SerializeToString())])
        if failed:
            raise SystemExit(f"the collector refused scenario {seed.scenario}'s batch {seq}: {failed}")


def profiles_table() -> list[str]:
    out = ["| scenario | instance type | report: TTFT / ITL | report: tok/s at 1 → 32 streams | simulator profile "
           "(SIMULATED) |", "|---|---|---|---|---|"]
    for seed in SEEDS:
        p = profile(seed)
        out.append(f"| {seed.scenario} | {seed.instance_type} | {seed.ttft_ms:g} ms / {seed.itl_ms:g} ms | "
                   f"{seed.tokens_per_s[0]:,.0f} → {seed.tokens_per_s[-1]:,.0f} | `{' '.join(sim_flags(p)[2:])}` |")
    return out


def answer_line(seed: Seed, result: pb.SearchResult, requests: int) -> str:
    if not result.found:
        return f"| {seed.scenario} | {seed.instance_type} | none within the SLOs | | | | {requests:,} |"
    headroom = dict(zip(result.slo_keys, result.headroom))
    return (f"| {seed.scenario} | {seed.instance_type} | {result.boundary:g} streams "
            f"({'verified' if result.verified else 'NOT verified'}) | {result.binding} | "
            f"{headroom.get('ttft_p99_ms', float('nan')):.0%} / {headroom.get('itl_p99_ms', float('nan')):.0%} | "
            f"{result.rps:.2f} req/s, {result.output_tps:,.0f} tok/s | {requests:,} |")


def plan_command(output_tokens: int, *more: str) -> list[str]:
    return ["siliconbench-collector", "plan", "--load", LOAD, "--slo", SLO, "--input-tokens", str(INPUT_TOKENS),
            "--output-tokens", str(output_tokens), *more]


def run_plan(store: str, output_tokens: int, *more: str) -> str:
    """`plan`'s output on the store (its exit code checked)."""
    done = subprocess.run([sys.executable, "-m", "siliconbench.collector", *plan_command(output_tokens, *more)[1:],
                           "--store", store], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    if done.returncode != 0:
        raise SystemExit(f"plan failed ({done.returncode}): {done.stderr}")
    return done.stdout


def seed_prices(path: Path) -> Path:
    """The report's own $/hour per instance type, as a price file (`plan --prices`)."""
    rows = [f"{s.instance_type},us-east-1,on_demand,{s.usd_per_hour},USD,2026-02-10,the reference report's price"
            for s in SEEDS]
    path.write_text("instance_type,region,kind,usd_per_hour,currency,as_of,source\n" + "\n".join(rows) + "\n")
    return path


def beside_the_report(answer: dict, priced_as_reported: dict) -> list[str]:
    """Per scenario: the report's estimates beside the plan's measured (SIMULATED) figures, both price sets."""
    ours = {c["scenario"]: c for c in answer["choices"]}
    theirs = {c["scenario"]: c for c in priced_as_reported["choices"]}
    by_report = sorted(SEEDS, key=lambda s: s.usd_per_million)
    out = ["| scenario | instance type | report: tok/s at 32 streams | report: $/h | report: $/1M tokens (rank) | "
           f"per node within the SLOs (SIMULATED) | nodes for {LOAD} | fleet $/h, list price | $/1M output tokens at "
           "the load, list price (rank) | same, at the report's $/h (rank) |", "|---|---|---|---|---|---|---|---|---|---|"]
    rank = {c["scenario"]: i for i, c in enumerate(answer["choices"], 1)}
    rank_reported = {c["scenario"]: i for i, c in enumerate(priced_as_reported["choices"], 1)}
    for seed in SEEDS:
        c, r = ours.get(seed.scenario), theirs.get(seed.scenario)
        if c is None or r is None:
            out.append(f"| {seed.scenario} | {seed.instance_type} | {seed.tokens_per_s[-1]:,.0f} | "
                       f"${seed.usd_per_hour:.2f} | ${seed.usd_per_million:.2f} | not in the plan | | | | |")
            continue
        out.append(f"| {seed.scenario} | {seed.instance_type} | {seed.tokens_per_s[-1]:,.0f} | ${seed.usd_per_hour:.2f} | "
                   f"${seed.usd_per_million:.2f} ({by_report.index(seed) + 1}) | {c['capacity_rps']:.2f} req/s, "
                   f"{c['capacity_output_tps']:,.0f} tok/s | {c['nodes']} | ${c['usd_per_hour']:,.2f} | "
                   f"${c['usd_per_million_output_tokens']:.2f} ({rank[seed.scenario]}) | "
                   f"${r['usd_per_million_output_tokens']:.2f} ({rank_reported[seed.scenario]}) |")
    return out


BEGIN, END = "<!-- bench/seed_plan.py: begin -->", "<!-- bench/seed_plan.py: end -->"


def write_docs(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="embedded store to keep the searches in, e.g. chdb://./seed")
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--start", type=int, default=1, help="the searches' first concurrency")
    parser.add_argument("--write-docs", action="store_true", help="replace the results block of docs/plan.md")
    args = parser.parse_args()
    out = [f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} CPUs, "
           f"{platform.machine()}), Python {platform.python_version()}: `bench/seed_plan.py --output-tokens "
           f"{args.output_tokens}`; the searches in virtual time, so the figures are the same on any machine.", "",
           *profiles_table(), "",
           "| scenario | instance type | largest concurrency within the SLOs | binding | headroom TTFT / ITL p99 | "
           "at the boundary | requests |", "|---|---|---|---|---|---|---|"]
    print("\n".join(out), flush=True)
    store = Store.open(args.store)
    ensure_prices(store)
    service = TelemetryService(store, store_threads=1)
    try:
        start_ns = int(dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc).timestamp() * 1e9)
        for seed in SEEDS:
            items, result = asyncio.run(search_node(seed, args.output_tokens, args.start, start_ns))
            store_node(service, store, seed, items)
            out.append(answer_line(seed, result, len(items.requests)))
            print(out[-1], flush=True)
    finally:
        service.close()
        store.close()
    prices = seed_prices(Path(args.store.removeprefix("chdb://")).parent / "seed-prices.csv")
    answer = json.loads(run_plan(args.store, args.output_tokens, "--format", "json"))
    as_reported = json.loads(run_plan(args.store, args.output_tokens, "--format", "json", "--prices", str(prices)))
    plan_text = run_plan(args.store, args.output_tokens)
    out += ["", "`" + " ".join(shlex.quote(a) for a in plan_command(args.output_tokens)) + "`:", "",
            re.sub(r"^(#+) ", r"###\1 ", plan_text, flags=re.M).strip(),  # headings below the page's own
            "", "Beside the report; the last column is the same plan priced at the report's own $/hour (the file "
            "this script writes beside the store): "
            f"`{' '.join(shlex.quote(a) for a in plan_command(args.output_tokens, '--prices', 'seed-prices.csv'))}`", "",
            *beside_the_report(answer, as_reported)]
    print("\n".join(out[len(out) - len(SEEDS) - 2:]))
    if args.write_docs:
        write_docs(REPO / "docs" / "plan.md", "\n".join(out))


if __name__ == "__main__":
    main()
