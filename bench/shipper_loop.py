"""What the shipper costs the event loop that stamps chunk arrivals, per finished request. Prints a table.

    PYTHONPATH=src .venv/bin/python bench/shipper_loop.py [--batches 20]

In single-process mode `Shipper.add` runs on the stamping loop, and every 2,000th call seals a
batch. This feeds it request records of 64 chunks, 100 at a time with a 2 ms pause (a fast step's
finishing rate), with the spool in a temporary directory and no collector, and times each call on the
loop's thread: CPU time (`thread_time_ns`, which other processes on the host do not inflate) and wall time.
The slowest call is the stall a stamp can meet; the spool thread's own work is not in these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from siliconbench.agent.errors import DeliveryIncomplete
from siliconbench.agent.shipper import Shipper
from siliconbench.agent.spool import Spool
from siliconbench.core.wire import pb

BATCH = 2000


def record(i: int) -> pb.RequestRecord:
    return pb.RequestRecord(
        run_id="run-0123456789ab", request_id=f"run-0123456789ab/3/{i}", step=3, concurrency=32,
        start_unix_ns=time.time_ns(), ttft_ns=50_000_000, e2e_ns=700_000_000, prompt_tokens=128, output_tokens=64,
        finish_reason="length", http_status=200, dispatch_delay_ns=12_345,
        chunk_offset_ns=[50_000_000 + k * 10_000_123 for k in range(64)], chunk_tokens=[1] * 64)


async def measure(batches: int) -> tuple[list[int], list[int]]:
    records = [record(i) for i in range(BATCH)]
    cpu, wall = [], []
    with tempfile.TemporaryDirectory() as spool_dir:
        shipper = Shipper("127.0.0.1:1", pb.Hello(agent_id="bench"), Spool.open(Path(spool_dir), "bench"),
                          max_items=BATCH, max_age_s=3600)
        shipper.start()  # as the agent does before any load (no collector answers: batches stay spooled)
        for _ in range(batches):
            for start in range(0, BATCH, 100):
                for r in records[start:start + 100]:
                    c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
                    shipper.add(r)
                    cpu.append(time.thread_time_ns() - c0)
                    wall.append(time.perf_counter_ns() - w0)
                await asyncio.sleep(0.002)
        try:
            await shipper.close(timeout_s=0)
        except DeliveryIncomplete:
            pass  # expected: nothing is acknowledged without a collector
    return sorted(cpu), sorted(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("siliconbench.agent.shipper").setLevel(logging.ERROR)  # "collector unreachable" lines
    cpu, wall = asyncio.run(measure(args.batches))
    n = len(cpu)
    print("| records | batches sealed | CPU per call p50 (us) | CPU per call max (ms) | wall per call max (ms) "
          "| loop CPU per 10,000 records (ms) |")
    print("|---|---|---|---|---|---|")
    print(f"| {n:,} | {args.batches} | {cpu[n // 2] / 1e3:.1f} | {cpu[-1] / 1e6:.2f} | {wall[-1] / 1e6:.2f} "
          f"| {sum(cpu) / n * 10_000 / 1e6:.0f} |")


if __name__ == "__main__":
    main()
