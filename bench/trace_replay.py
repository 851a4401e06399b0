"""How closely a trace replay keeps the trace's times: the dispatch lag (send − scheduled time) of each request
of a replayed trace at 1,000 requests/s offered, p50 and p99, from siliconbench and, where vLLM's venv is
there, from `vllm bench serve --dataset-name timed_trace` on the same trace. Prints a table.

    .venv/bin/python bench/trace_replay.py [--rate 1000] [--seconds 10] [--vllm-venv .vllm-venv]

The trace: a Mooncake JSONL made here, Poisson arrivals at --rate for --seconds, prompts of 1,024 tokens (two
512-token hash ids, the first shared by the requests of one of 64 sessions), 8 output tokens. The server: the
simulator in its own process (TTFT 5 ms, ITL 1 ms), so the server is never what is late. siliconbench replays
it as a user does, `siliconbench bench --trace` (agent, shipper and an embedded collector in one command); its
lag is each request's stored dispatch_delay_ns. vllm bench serve (never in CI; its venv from
scripts/vllm_cpu_env.sh, a tiny tokenizer built with tests/vllm/build_tiny_model.py) records each request's
start but not its scheduled time, so its lag is taken relative to its most punctual request (start − trace
time, less the least of those); siliconbench's is shown the same way too, beside its exact figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SIM_MODEL = "siliconbench/sim-llama"
BLOCK = 512
_DRIVER = ("import sys\nfrom vllm.benchmarks.serve import add_cli_args, main\n"
           "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
           "parser = FlexibleArgumentParser()\nadd_cli_args(parser)\nmain(parser.parse_args(sys.argv[1:]))\n")


def make_trace(path: Path, rate: float, seconds: float, seed: int = 1) -> int:
    """A Mooncake trace of Poisson arrivals; returns its number of requests."""
    rng = random.Random(seed)
    t, n = 0.0, 0
    with path.open("w") as out:
        while t < seconds:
            session = rng.randrange(64)
            out.write(json.dumps({"timestamp": round(t * 1e3, 3), "input_length": 2 * BLOCK, "output_length": 8,
                                  "hash_ids": [session, 1000 + n]}) + "\n")
            t += rng.expovariate(rate)
            n += 1
    return n


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def relative(lags_ms: list[float]) -> list[float]:
    least = min(lags_ms)
    return [v - least for v in lags_ms]


def siliconbench(url: str, trace: Path, workdir: Path) -> tuple[list[float], list[float]]:
    """Exact lags, and start − trace time per request (both ms), from a replay through `siliconbench bench`."""
    store = f"chdb://{workdir}/store"
    done = subprocess.run([PY, "-m", "siliconbench.bench", "bench", "--target", url, "--store", store, "--trace",
                           str(trace), "--trace-format", "mooncake", "--repetitions", "1", "--warmup-requests", "2",
                           "--spool-dir", str(workdir / "spool")], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        sys.exit(f"siliconbench bench failed:\n{done.stderr[-3000:]}")
    run_id = done.stdout.strip().splitlines()[-1]
    sql = (f"SELECT dispatch_delay_ns / 1e6, (toUnixTimestamp64Nano(start_time) - trace_offset_ns) / 1e6 "
           f"FROM siliconbench.requests WHERE run_id = '{run_id}'")
    out = subprocess.run([PY, "-m", "siliconbench.collector", "sql", sql, "--store", store], capture_output=True,
                         text=True, timeout=600, check=True).stdout
    rows = [line.split("\t") for line in out.strip().splitlines()[1:]]  # a header line, then TSV
    return [float(r[0]) for r in rows], [float(r[1]) for r in rows]


def vllm_bench(python: Path, url: str, trace: Path, requests: int, workdir: Path) -> list[float] | str:
    """vllm bench serve's start − trace time per request (ms), or why it could not run."""
    tokenizer = workdir / "tokenizer"
    built = subprocess.run([str(python), str(ROOT / "tests" / "vllm" / "build_tiny_model.py"), str(tokenizer)],
                           capture_output=True, text=True, timeout=600)
    if built.returncode != 0:
        return f"no tokenizer ({built.stderr.strip().splitlines()[-1:]})"
    out = workdir / "vllm-bench"
    done = subprocess.run([str(python), "-c", _DRIVER, "--backend", "openai", "--base-url", url, "--endpoint",
                           "/v1/completions", "--model", SIM_MODEL, "--tokenizer", str(tokenizer), "--dataset-name",
                           "timed_trace", "--dataset-path", str(trace), "--timed-trace-sec-multiplier", "0.001",
                           "--timed-trace-chunk-hash-size", str(BLOCK), "--num-prompts", str(requests),
                           "--ignore-eos", "--disable-tqdm", "--save-result", "--save-detailed", "--result-dir",
                           str(out), "--result-filename", "result.json"],
                          capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    if done.returncode != 0:
        return f"failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
    result = json.loads((out / "result.json").read_text())
    times = [json.loads(line)["timestamp"] / 1e3 for line in trace.read_text().splitlines()]
    starts = result.get("start_times")
    if not starts:
        return "its result file has no per-request start times"
    return [(s - t) * 1e3 for s, t in zip(starts, times)]


def row(name: str, lags: list[float]) -> str:
    return f"| {name} | {len(lags):,} | {percentile(lags, 0.5):.2f} | {percentile(lags, 0.99):.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="offered requests/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="the trace's length")
    parser.add_argument("--vllm-venv", type=Path, default=ROOT / ".vllm-venv",
                        help="vLLM's venv, for vllm bench serve (skipped when absent)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from siliconbench.bench.run import simulator

    with tempfile.TemporaryDirectory(prefix="trace-bench-") as tmp:
        workdir = Path(tmp)
        trace = workdir / "trace.jsonl"
        requests = make_trace(trace, args.rate, args.seconds)
        sim = ["--ttft-ms", "5", "--itl-ms", "1"]
        with simulator(sim) as url:
            exact, started = siliconbench(url, trace, workdir)
        peer: list[float] | str = "no vLLM venv"
        python = args.vllm_venv / "bin" / "python"
        if python.exists():
            with simulator(sim) as url:
                peer = vllm_bench(python, url, trace, requests, workdir)
    print(f"trace: {requests:,} requests, Poisson at {args.rate:g}/s offered for {args.seconds:g} s; "
          f"{platform.node()}, {os.cpu_count()} cores, {platform.python_version()}")
    print("| client | requests | dispatch lag p50 (ms) | p99 (ms) |\n|---|---:|---:|---:|")
    print(row("siliconbench (exact: send − scheduled)", exact))
    print(row("siliconbench (relative to its most punctual request)", relative(started)))
    print(row("vllm bench serve timed_trace (relative)", relative(peer)) if isinstance(peer, list)
          else f"| vllm bench serve timed_trace | – | {peer} | |")


if __name__ == "__main__":
    main()
