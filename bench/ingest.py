"""Collector ingest throughput: N simulated agents stream synthetic records through real gRPC into a
collector process on embedded chDB.

Each agent opens its own connection, says Hello and sends pre-built batches on a fixed period
(open loop: the offered load does not drop when the collector is slow). A request record carries
128 chunk offsets and token counts (a 128-token reply); a device sample carries 8 metrics, i.e. 8
rows of `device_samples`. An agent's requests fall in steps of `--step-s` seconds, and the batch that
closes a step carries its `steps` row, so steps end during the window and the collector keeps their results
alongside (collector/kept.py); `--keep-steps on,off` measures each N with keeping and with a collector
started `--no-keep-steps`, side by side. After the measured window every agent waits for its last ack,
the collector stops, and the rows in the store are counted against what was sent (zero loss).

Prints, per N: sustained request records/s and device-sample rows/s (acknowledged within the window),
p50/p99 ack latency (batch offered -> its Ack; an agent offers each batch and sends it when granted), collector CPU (% of one core, chDB threads included)
the steps kept of those over (read once the collector stopped: steps that ended in its last
moments may be left to the next start), and the loss check (requests and sample rows lost, duplicated
request ids, and how far the materialized view's per-step digests are from the stored requests). Targets (2 cores, 100 agents):
>= 20,000 request records/s and >= 100,000 device samples/s sustained, zero loss.

    .venv/bin/python bench/ingest.py [--agents 1,10,100] [--seconds 10] [--requests-per-s 22000]
                                     [--sample-rows-per-s 110000] [--batch-period-s 1.0] [--store-threads 4]
                                     [--max-bytes-in-flight-mib 24] [--step-s 5] [--keep-steps on,off]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "proto"))

from siliconbench.agent.selfmon import percentile  # noqa: E402
from siliconbench.agent.uplink import STREAM_METHOD  # noqa: E402
from siliconbench.agent.batcher import REQUESTS_TAG, SAMPLES_TAG, STEPS_TAG  # noqa: E402
from siliconbench.core.framing import BATCH_TAG, delimited  # noqa: E402
from siliconbench.core.wire import pb  # noqa: E402
from tests.servers import start_collector  # noqa: E402

CHUNKS = 128
METRICS = ("power_w", "util_gpu_pct", "util_mem_pct", "mem_used_bytes", "mem_total_bytes", "temp_c",
           "sm_clock_mhz", "energy_j")
_ID = b"Q" * 24  # fixed-width placeholder for a request id inside a serialized record


@dataclass
class AgentLoad:
    batches: list[tuple[int, bytes, int, int]]  # (seq, AgentMessage bytes, request records, sample rows)
    latencies: list[float] = field(default_factory=list)
    acked_requests: int = 0
    acked_rows: int = 0
    errors: int = 0


def build_batches(agent: str, run_id: str, n_batches: int, requests: int, samples: int,
                  batches_per_step: int = 0) -> list:
    """The agent's batches; its requests in steps of `batches_per_step` batches, each step's `steps` row in
    the batch that closes it (0: one step that never ends, no steps row)."""
    now = time.time_ns()
    offsets = [1_000_000 * (i + 1) for i in range(CHUNKS)]
    out, counter = [], 0
    for seq in range(1, n_batches + 1):
        step = (seq - 1) // batches_per_step if batches_per_step else 0
        template = pb.RequestRecord(run_id=run_id, request_id=_ID.decode(), step=step, concurrency=32,
                                    start_unix_ns=now, ttft_ns=offsets[0], e2e_ns=offsets[-1] + 1000,
                                    chunk_offset_ns=offsets, chunk_tokens=[1] * CHUNKS, prompt_tokens=512,
                                    output_tokens=CHUNKS, http_status=200, finish_reason="length").SerializeToString()
        head = pb.Batch(seq=seq, batch_id=f"{agent}/bench/{seq}").SerializeToString()
        parts = [head]
        for _ in range(requests):
            record = template.replace(_ID, f"{agent[-8:]:>8}{counter:016d}".encode())
            counter += 1
            parts.append(delimited(REQUESTS_TAG, record))
        if batches_per_step and seq % batches_per_step == 0:  # the step is over
            parts.append(delimited(STEPS_TAG, pb.StepEvent(
                run_id=run_id, step=step, concurrency=32, start_unix_ns=now, end_unix_ns=now + 10**9,
                requests=requests * batches_per_step, mode="closed").SerializeToString()))
        for k in range(samples):
            sample = pb.DeviceSample(run_id=run_id, time_unix_ns=now + seq * 10**6 + k, source="nvml",
                                     device=str(k % 8), values={m: float(k) for m in METRICS}).SerializeToString()
            parts.append(delimited(SAMPLES_TAG, sample))
        out.append((seq, delimited(BATCH_TAG, b"".join(parts)), requests, samples * len(METRICS)))
    return out


async def run_agent(address: str, agent: str, load: AgentLoad, period_s: float, offset_s: float,
                    window: tuple[float, float]) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(STREAM_METHOD, request_serializer=None,
                                     response_deserializer=pb.CollectorMessage.FromString)()
        await call.write(pb.AgentMessage(hello=pb.Hello(agent_id=agent, node_name=agent)).SerializeToString())
        sent_at: dict[int, float] = {}
        sizes = {seq: (req, rows) for seq, _, req, rows in load.batches}
        grants: asyncio.Queue[int] = asyncio.Queue()

        async def reader() -> None:
            async for message in call:
                now = time.perf_counter()
                if message.HasField("grant"):
                    grants.put_nowait(message.grant.seq)
                    continue
                if message.HasField("error"):
                    load.errors += 1
                    continue
                seq = message.ack.seq
                if window[0] <= now <= window[1]:
                    load.acked_requests += sizes[seq][0]
                    load.acked_rows += sizes[seq][1]
                    load.latencies.append(now - sent_at[seq])
                if seq == load.batches[-1][0]:
                    return

        task = asyncio.create_task(reader())
        start = time.perf_counter() + offset_s
        for i, (seq, data, _, _) in enumerate(load.batches):
            delay = start + i * period_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[seq] = time.perf_counter()
            # offered, then sent once granted, as the shipper does (collector/budget.py)
            await call.write(pb.AgentMessage(offer=pb.Offer(seq=seq, bytes=len(data))).SerializeToString())
            assert await grants.get() == seq
            await call.write(data)
        await task
        await call.done_writing()


def measure(n_agents: int, keep_steps: bool, args: argparse.Namespace) -> dict:
    # an agent seals a batch at 2000 items at the latest (the shipper's max_items), so one agent
    # carrying the whole load sends smaller batches more often
    period = min(args.batch_period_s, 2000 * n_agents / args.requests_per_s)
    per_agent_requests = max(1, round(args.requests_per_s / n_agents * period))
    per_agent_samples = max(1, round(args.sample_rows_per_s / len(METRICS) / n_agents * period))
    n_batches = int(args.seconds / period) + 2
    batches_per_step = max(1, round(args.step_s / period))
    run_id = f"bench-{n_agents}"
    print(f"N={n_agents}, keeping step results {'on' if keep_steps else 'off'}: building {n_agents} x {n_batches} batches of {per_agent_requests} requests + "
          f"{per_agent_samples} samples ...", file=sys.stderr)
    loads = [AgentLoad(build_batches(f"bench-agent-{a:04d}", run_id, n_batches, per_agent_requests,
                                     per_agent_samples, batches_per_step)) for a in range(n_agents)]
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        store = f"chdb://{tmp}/store"
        collector = start_collector(store, Path(tmp) / "collector.log", "--store-threads", str(args.store_threads),
                                    "--max-bytes-in-flight-mib", str(args.max_bytes_in_flight_mib),
                                    *(() if keep_steps else ("--no-keep-steps",)))
        port = collector.port
        try:
            proc = psutil.Process(collector.popen.pid)
            begin = time.perf_counter() + 1.0          # first second: connections and warm-up
            window = (begin + period, begin + period + args.seconds - period)
            cpu0 = None

            async def main() -> None:
                nonlocal cpu0
                tasks = [asyncio.create_task(run_agent(f"127.0.0.1:{port}", f"bench-agent-{a:04d}", loads[a], period,
                                                       1.0 + period * a / n_agents, window))
                         for a in range(n_agents)]
                await asyncio.sleep(window[0] - time.perf_counter())
                cpu0 = proc.cpu_times()
                await asyncio.sleep(window[1] - time.perf_counter())
                cpu1 = proc.cpu_times()
                measure.cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (window[1] - window[0])
                await asyncio.gather(*tasks)

            asyncio.run(main())
        finally:
            collector.stop(60)
        counts = subprocess.run([sys.executable, "-m", "siliconbench.collector", "sql",
                                 "SELECT (SELECT count() FROM siliconbench.requests), "
                                 "(SELECT uniqExact(request_id) FROM siliconbench.requests), "
                                 "(SELECT count() FROM siliconbench.device_samples), "
                                 "(SELECT sum(requests) FROM siliconbench.request_digests FINAL), "
                                 "(SELECT count() FROM siliconbench.kept_steps FINAL), "
                                 "(SELECT count() FROM siliconbench.steps)", "--store", store],
                                capture_output=True, text=True, cwd=REPO).stdout.strip().splitlines()[-1].split("\t")
    seconds = window[1] - window[0]
    latencies = [x for load in loads for x in load.latencies]
    sent_requests = sum(r for load in loads for _, _, r, _ in load.batches)
    sent_rows = sum(s for load in loads for _, _, _, s in load.batches)
    return {
        "agents": n_agents, "keep": "on" if keep_steps else "off",
        "kept": f"{int(counts[4])} / {int(counts[5])}", "req_per_s": sum(load.acked_requests for load in loads) / seconds,
        "rows_per_s": sum(load.acked_rows for load in loads) / seconds,
        "p50_ms": 1000 * percentile(latencies, 0.5) if latencies else float("nan"),
        "p99_ms": 1000 * percentile(latencies, 0.99) if latencies else float("nan"),
        "cpu_pct": 100 * measure.cpu, "errors": sum(load.errors for load in loads),
        "loss": f"{sent_requests - int(counts[0])} req, {sent_rows - int(counts[2])} rows, "
                f"{int(counts[0]) - int(counts[1])} dup, digests {int(counts[3]) - int(counts[0]):+d}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="1,10,100")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--requests-per-s", type=float, default=22_000, help="offered load, all agents together")
    parser.add_argument("--sample-rows-per-s", type=float, default=110_000, help="offered load, all agents together")
    parser.add_argument("--batch-period-s", type=float, default=1.0, help="each agent sends one batch per period")
    parser.add_argument("--store-threads", type=int, default=4)
    parser.add_argument("--max-bytes-in-flight-mib", type=int, default=24, help="the collector's byte budget")
    parser.add_argument("--step-s", type=float, default=5.0, help="each agent's steps last this long (in batches)")
    parser.add_argument("--keep-steps", default="on,off", help="on: the collector keeps step results (its default); "
                        "off: started with --no-keep-steps; both: one after the other at each N")
    args = parser.parse_args()
    settings = [{"on": True, "off": False}[word] for word in args.keep_steps.split(",")]
    results = [measure(int(n), keep, args) for n in args.agents.split(",") for keep in settings]
    print(f"\noffered: {args.requests_per_s:,.0f} request records/s + {args.sample_rows_per_s:,.0f} device-sample "
          f"rows/s; one batch per agent every {args.batch_period_s} s (at most 2000 requests per batch); {args.store_threads} store threads; "
          f"{psutil.cpu_count()} CPUs (client and collector share them); steps of {args.step_s:g} s")
    print("| agents | keeping step results | request records/s | device-sample rows/s | ack p50 ms | ack p99 ms | "
          "collector CPU % | steps kept / over | errors | lost / duplicated / digests |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(f"| {r['agents']} | {r['keep']} | {r['req_per_s']:,.0f} | {r['rows_per_s']:,.0f} | {r['p50_ms']:.0f} | "
              f"{r['p99_ms']:.0f} | {r['cpu_pct']:.0f} | {r['kept']} | {r['errors']} | {r['loss']} |")


if __name__ == "__main__":
    main()
