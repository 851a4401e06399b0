"""`bench/search.py --peers`: each tool searches for real, over loopback, a simulator whose boundary is known,
one tool at a time, each against a fresh simulator that counts the requests it served.

The simulator (`siliconbench-agent sim`): 10 ms to the first token, then 40 ms between tokens at one
stream in flight, each further stream stretching every gap by half that (SimProfile.steady_itl_ms): 80 ms
at 3 streams, 100 ms at 4. Under TPOT p50 <= 90 ms the truth is therefore 3 streams. The SLO is a median
and the steps 10 ms either side of it because this shared 2-core machine's late wake-ups add tens of ms
to a p99 (at one stream, against a 10 ms simulator while other work ran, a TTFT p99's 95 % bounds
were 69 and 198 ms): a median holds still under them.

    siliconbench   `siliconbench-agent search --slo tpot_p50_ms<=90` through a collector, --start 1
                   --max 64, tolerance 5 %
    guidellm       `guidellm run --profile kind=goodput` (GuideLLM 0.8, its own venv): double then bisect
                   concurrency from 1, 100 requests a probe, passing where >= 50 % of requests have their
                   inter-token latency within 90 ms (the attainment a median limit means), tolerance 5 %

GuideLLM goes in its own venv (never in CI): python -m venv PEERS/guidellm && PEERS/guidellm/bin/pip install
guidellm. It reads a tokenizer from the served model's name, so the simulator serves a local tokenizer
directory's path (tests/vllm/build_tiny_model.py builds one). The agent's client-limited verdict is set
aside in its process: on a shared 2-core machine, with the simulator beside it, its dispatch delay trips it.
`vllm bench sweep` in vLLM 0.32 has serve, serve_workload, startup, plot and plot_pareto; serve_sla is gone,
and serve_workload sweeps a linspace of loads without an SLO, so it answers a different question.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.servers import start_collector, start_sim

SIM = ("--ttft-ms", "10", "--itl-ms", "40", "--slowdown-per-stream", "0.5")
OUTPUT_TOKENS, INPUT_TOKENS, LIMIT_MS, TRUTH = 8, 16, 90.0, 3
AGENT = ("import math, sys\n"
         "from siliconbench.core import verdict\n"
         "for name in ('CLIENT_DELAY_MS', 'SENDER_CPU_PCT'):\n"
         "    setattr(verdict, name, math.inf)\n"
         "sys.argv[0] = 'siliconbench-agent'\n"
         "from siliconbench.agent.cli import main\n"
         "main()\n")


def siliconbench(url: str, work: Path) -> float | None:
    collector = start_collector(f"chdb://{work}/data", work / "collector.log")
    try:
        done = subprocess.run([sys.executable, "-c", AGENT, "search", "--target", url, "--collector",
                               collector.address, "--spool-dir", str(work / "spool"), "--slo",
                               f"tpot_p50_ms<={LIMIT_MS:g}", "--start", "1", "--max", "64", "--input-tokens",
                               str(INPUT_TOKENS), "--output-tokens", str(OUTPUT_TOKENS), "--workers", "1", "--json"],
                              capture_output=True, text=True, timeout=3600)
    finally:
        collector.stop()
    if done.returncode not in (0, 9, 10):
        raise SystemExit(f"siliconbench search failed ({done.returncode}): {done.stderr[-2000:]}")
    sys.stderr.write("".join(line + "\n" for line in done.stderr.splitlines() if line.startswith("probe ")))
    return json.loads(done.stdout.splitlines()[-1])["boundary"]


def guidellm(url: str, work: Path, peers: Path) -> float | None:
    out = work / "guidellm.json"
    done = subprocess.run([
        str(peers / "guidellm" / "bin" / "guidellm"), "run", "--backend", f"kind=openai_http,target={url}",
        "--profile", "kind=goodput,target_attainment=0.5,initial_streams=1,max_streams=64,tolerance=0.05",
        "--metrics", json.dumps({"kind": "generative", "slo": {"tpot_ms": LIMIT_MS}}),
        "--data", f"kind=synthetic_text,prompt_tokens={INPUT_TOKENS},output_tokens={OUTPUT_TOKENS}",
        "--constraint", "kind=max_requests,count=100", "--output", f"kind=json,path={out}",
        "--disable-console-interactive"], capture_output=True, text=True, timeout=3600, cwd=work)
    if done.returncode != 0:
        raise SystemExit(f"guidellm failed ({done.returncode}): {done.stderr[-2000:]}")
    best = json.loads(out.read_text())["conclusions"][0].get("best_passing_streams")
    return None if best is None else float(best)


def run_peers(peers: Path, tokenizer: Path) -> list[tuple[str, ...]]:
    tools: dict[str, Callable[[str, Path], float | None]] = {
        "siliconbench search": siliconbench, "GuideLLM goodput": lambda url, work: guidellm(url, work, peers)}
    rows = []
    for name, tool in tools.items():
        with tempfile.TemporaryDirectory(prefix="search-peers-") as tmp:
            work = Path(tmp)
            sim = start_sim(work / "sim.log", *SIM, "--model", str(tokenizer), "--send-log", str(work / "sent.jsonl"))
            began = time.monotonic()
            try:
                answer = tool(sim.url, work)
            finally:
                wall_s = time.monotonic() - began
                sim.stop()
            served = sum(1 for _ in (work / "sent.jsonl").open())
        exact = answer is not None and abs(answer - TRUTH) <= max(1.0, 0.05 * TRUTH)
        rows.append((name, "none" if answer is None else f"{answer:g}", str(TRUTH), "yes" if exact else "NO",
                     f"{served:,}", f"{wall_s:.0f} s"))
    return rows


def print_peers(rows: list[tuple[str, ...]]) -> None:
    print(f"| tool (TPOT p50 <= {LIMIT_MS:g} ms) | answer | truth | exact | requests served | wall |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
