"""How soon `search` has each probe's verdict from the collector's store: from the end of the probe's step
(its last request done) to its readings read back (collector/probe_readings.py), through a real
collector on embedded chDB and the simulator, each a process of its own, as a user runs them.

The agent's `run --verbose --plan` (a plan with a `search:` section: probes of at least --min-requests) logs, per probe step, when its readings came back and how long the
collector waited for the step's rows; this prints those, per probe size, with how many probes were read
from the store rather than judged on the agent's own records (target: every one, within 1 s).

    .venv/bin/python bench/probe_verdict.py [--min-requests 100,1000,5000] [--target URL --slo SLOS]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import start_collector, start_sim  # noqa: E402

READ = re.compile(r"steps ([\d,]+): readings read from the store ([\d.]+) s after the step ended "
                  r"\(the collector waited ([\d.]+) s for its rows\)")
PROBE = re.compile(r"search [^:]+: probe \d+ .*?: (\d+) requests( read from the store)?;")
ANSWER = re.compile(r"(largest concurrency within SLO: .*|no load within SLO: .*)")


def search(collector: str, target: str, work: Path, run_id: str, slo: str, min_requests: int) -> list[str]:
    """One search (concurrency 4 to 16) as a plan's `search:` section runs it, its probes at least
    `min_requests` long; its log lines."""
    plan = work / f"{run_id}.json"
    plan.write_text(json.dumps({"input_tokens": 16, "output_tokens": 4, "search": {
        "slo": slo, "start": 4, "max": 16, "min_requests": min_requests}}))
    done = subprocess.run(
        [sys.executable, "-m", "siliconbench.agent", "run", "--verbose", "--plan", str(plan), "--target", target,
         "--collector", collector, "--spool-dir", str(work / run_id), "--run-id", run_id],
        capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        sys.exit(f"search {run_id} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stderr.splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-requests", default="100,1000,5000",
                        help="comma-separated: each a search whose probes send at least this many requests")
    parser.add_argument("--target", help="a running OpenAI-compatible server (e.g. vLLM) instead of the simulator")
    parser.add_argument("--slo", default="ttft_p50_ms<=40", help="the searches' SLOs")
    args = parser.parse_args()
    sizes = [int(n) for n in args.min_requests.split(",")]
    print(f"# probe verdicts read from the store — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.node()}, {os.cpu_count()} cores; collector on embedded chDB, "
          f"{args.target or 'the simulator'}, one agent; SLO {args.slo}")
    print("| min requests per probe | probe steps | read from the store | read after the step's end p50 / max "
          "| collector waited for rows p50 / max | answer |")
    print("|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="siliconbench-probe-verdict-") as tmp:
        work = Path(tmp)
        sim = (None if args.target else
               start_sim(work / "sim.log", "--ttft-ms", "20", "--itl-ms", "2", "--slowdown-per-stream", "0.1"))
        target = sim.url if sim is not None else args.target
        collector = start_collector(f"chdb://{work}/data", work / "collector.log")
        try:
            for size in sizes:
                lines = search(collector.address, target, work, f"verdict-{size}", args.slo, size)
                answer = next((m.group(1) for m in map(ANSWER.search, lines) if m), "?")
                reads = [(float(m.group(2)), float(m.group(3))) for m in map(READ.search, lines) if m]
                probes = [m for m in map(PROBE.search, lines) if m]
                stored = sum(1 for m in probes if m.group(2))
                after, waited = [r for r, _ in reads], [w for _, w in reads]
                print(f"| {size:,} | {len(reads)} | {stored} of {len(probes)} probes | "
                      f"{statistics.median(after):.3f} / {max(after):.3f} s | "
                      f"{statistics.median(waited):.3f} / {max(waited):.3f} s | {answer} |", flush=True)
        finally:
            collector.stop()
            if sim is not None:
                sim.stop()


if __name__ == "__main__":
    main()
