"""How exact `search` is, and what it spends, against capacity knees whose boundary is known in closed
form, beside the rule the public tools search by (point estimates of short probes, no verification).

Each probe's requests are drawn from the simulator profile's closed form (tests/agent/search/knee.py):
TTFT = the closed-loop TTFT at the probed concurrency + exponential noise (2 ms mean), and, in the
slow-tail scenarios, each request 300 ms late with that probability; past the slots a rate queues without end. Time is
virtual, so each scenario runs many seeds in seconds, on any machine, and "requests" counts what the
search would have sent.

    siliconbench   agent/search/method.py: bracket, bisect, verify; pass on the 95 % upper bounds, fail on a
                   lower bound, extend (doubling) while the limit lies between them, then undecided
    point-100      the public tools' rule as modelled here (GuideLLM goodput / vllm bench sweep serve_sla
                   style): double then bisect to the same tolerance, each probe 100 requests judged on
                   its point estimate, the last passing value the answer, no verification

Truth: the largest concurrency whose true TTFT p99 (closed form + the noise's quantile, the slow tail's
share mixed in) is within the SLO; for rate, the slots' capacity. "exact" = within the tolerance (5 %,
at least one stream), or both saying "none"; "undecided" = the answer said "undecided between X and Y"
(where the data could not decide), and how many of those held the truth in [X, Y].

    .venv/bin/python bench/search.py [--seeds 40]
    .venv/bin/python bench/search.py --peers [--peers-dir /work/peers] [--tokenizer DIR]

`--peers` runs the tools for real instead, against one simulator process whose boundary is known
(bench/search_peers.py), and prints each tool's answer, the truth, the requests the simulator served
and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from siliconbench.agent.search.method import Search
from siliconbench.agent.sim import SimProfile
from siliconbench.core.search import SearchOptions
from siliconbench.core.slo import parse_slos
from siliconbench.core.slo_bounds import percentile_point
from tests.agent.search.knee import OUTPUT_TOKENS, KneeModel

KNEE = SimProfile(ttft_ms=20, itl_ms=10, slots=32)
LIMIT_MS = 80.0
NOISE_MS = 2.0
SLOW_MS = 300.0
TOLERANCE = 0.05


@dataclass(frozen=True)
class Scenario:
    name: str
    control: str
    slow_share: float  # the slow tail's share of requests (0: none)


SCENARIOS = (Scenario("concurrency", "concurrency", 0.0), Scenario("concurrency, 1.5 % slow", "concurrency", 0.015),
             Scenario("concurrency, 0.5 % slow", "concurrency", 0.005), Scenario("rate", "rate", 0.0))


def true_p99_ms(concurrency: int, slow_share: float) -> float:
    """The p99 of closed form + exponential noise, with `slow_share` of requests SLOW_MS later."""
    base = KNEE.steady_ttft_ms(concurrency, 16, OUTPUT_TOKENS)
    if slow_share >= 0.01:  # the p99 lies in the slow tail
        q = (0.99 - (1 - slow_share)) / slow_share  # its quantile within the tail
        return base + SLOW_MS + -NOISE_MS * math.log(1 - q)
    q = 0.99 / (1 - slow_share)
    return base + -NOISE_MS * math.log(1 - q)


def truth(s: Scenario, model: KneeModel) -> float | None:
    if s.control == "rate":
        return model.capacity_rps
    within = [c for c in range(1, 1025) if true_p99_ms(c, s.slow_share) <= LIMIT_MS]
    return max(within) if within else None


async def point_search(model: KneeModel, control: str, start: float, most: float, probe_requests: int = 100) -> float | None:
    """Double, then bisect, judging each 100-request probe on its p99 point estimate (and, for rate, on
    its completions keeping up); the last passing value, unverified."""
    async def passes(value: float) -> bool:
        m = await model(value, probe_requests + (2 * int(value) if control == "concurrency" else 0), 0)
        ttfts = [r.ttft_ns / 1e6 for r in m.records]
        point = percentile_point(ttfts, 0.99)
        keeps_up = control != "rate" or m.achieved_rps >= 0.95 * value
        return point is not None and point <= LIMIT_MS and keeps_up

    low, high, value = None, None, start
    while True:
        if not await passes(value):
            high = value
            break
        low = value
        if value >= most:
            break
        value = min(2 * value, most)
    if low is None:
        return None
    while high is not None and high - low > max(1.0 if control == "concurrency" else 0.0, TOLERANCE * low):
        mid = (low + high) / 2
        mid = float(math.floor(mid)) if control == "concurrency" else mid
        low, high = (mid, high) if await passes(mid) else (low, mid)
    return low


def exact(answer: float | None, true: float | None) -> bool:
    if answer is None or true is None:
        return answer is None and true is None
    return abs(answer - true) <= max(1.0 if true == int(true) and true > 1 else 0.0, TOLERANCE * true)


async def run(seeds: int) -> list[tuple[str, ...]]:
    rows = []
    for s in SCENARIOS:
        start, most = (10.0, 5000.0) if s.control == "rate" else (1.0, 1024.0)
        for method in ("siliconbench", "point-100"):
            answers, spent, hits, undecided, held = [], [], 0, 0, 0
            true = None
            for seed in range(seeds):
                model = KneeModel(KNEE, s.control, seed, NOISE_MS, s.slow_share, SLOW_MS, slow_at_random=True)
                true = truth(s, model)
                if method == "siliconbench":
                    search = Search(parse_slos(f"ttft_p99_ms<={LIMIT_MS:g}"),
                                    SearchOptions(control=s.control, start=start, max=most), model,
                                    output_tokens=OUTPUT_TOKENS)
                    found = await search.run()
                    answer = found.boundary
                    if found.undecided_to is not None:
                        undecided += 1
                        held += answer is None if true is None else (answer or 0) <= true <= found.undecided_to
                else:
                    answer = await point_search(model, s.control, start, most)
                answers.append(answer)
                spent.append(model.requests_sent)
                hits += exact(answer, true)
            shown = sorted({f"{a:.4g}" if a is not None else "none" for a in answers})
            rows.append((s.name, method, "none" if true is None else f"{true:.4g}",
                         f"{hits}/{seeds}", f"{undecided}/{seeds} ({held} held the truth)" if undecided else "-",
                         ", ".join(shown[:4]) + (" ..." if len(shown) > 4 else ""),
                         f"{sum(spent) / seeds:,.0f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--peers", action="store_true", help="run the tools for real against a simulator")
    parser.add_argument("--peers-dir", type=Path, default=Path(".peers"), help="where GuideLLM's venv is")
    parser.add_argument("--tokenizer", type=Path, help="a tokenizer directory (default: PEERS_DIR/tiny-model)")
    args = parser.parse_args()
    print(f"# {platform.node()} ({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}), "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    if args.peers:
        from bench.search_peers import print_peers, run_peers
        tokenizer = (args.tokenizer or args.peers_dir / "tiny-model").resolve()
        if not (tokenizer / "tokenizer.json").exists():
            parser.error(f"no tokenizer at {tokenizer}: give --tokenizer DIR (tests/vllm/build_tiny_model.py builds one)")
        if not (args.peers_dir / "guidellm" / "bin" / "guidellm").exists():
            parser.error(f"no GuideLLM at {args.peers_dir}/guidellm: python -m venv {args.peers_dir}/guidellm && "
                         f"{args.peers_dir}/guidellm/bin/pip install guidellm")
        print_peers(run_peers(args.peers_dir.resolve(), tokenizer))
        return
    rows = asyncio.run(run(args.seeds))
    print(f"# TTFT p99 <= {LIMIT_MS:g} ms, tolerance {TOLERANCE:.0%}, {args.seeds} seeds")
    print("| scenario | method | truth | exact | undecided | answers (largest pass) | requests per search (mean) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
