"""A scripted agent for fault tests: the real Shipper and Spool in their own process, producing
request records `<run>/<i>` for i in [start, start+count) in chunks, one batch per chunk, between
the run's start and end events.

After each chunk is sealed into the spool it prints `sealed <i>` (records 0..i-1 are then durable),
then pauses, so a test can kill it at a known point. SIGTERM drains within --grace-s.

    python -m tests.faults.agent_proc --collector HOST:PORT --spool-dir DIR --run RUN --start 0 --count 200
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from pathlib import Path

from siliconbench.agent.errors import DeliveryIncomplete
from siliconbench.agent.shipper import Shipper
from siliconbench.agent.spool import Spool
from siliconbench.core.wire import pb


def record(run_id: str, i: int) -> pb.RequestRecord:
    return pb.RequestRecord(run_id=run_id, request_id=f"{run_id}/{i}", step=0, concurrency=1,
                            start_unix_ns=time.time_ns(), ttft_ns=1_000_000, e2e_ns=5_000_000,
                            chunk_offset_ns=[1_000_000, 3_000_000], chunk_tokens=[1, 1], prompt_tokens=8,
                            output_tokens=2, http_status=200, finish_reason="length")


def run_event(run_id: str, phase: pb.Phase) -> pb.RunEvent:
    """The run's start or end, so that reports know the run."""
    return pb.RunEvent(run_id=run_id, phase=phase, time_unix_ns=time.time_ns(), target_url="http://sim:8000",
                       model="sim", simulated=True, scenario="faults")


async def main(args: argparse.Namespace) -> int:
    spool = Spool.open(Path(args.spool_dir), args.agent, args.spool_max_bytes)
    shipper = Shipper(args.collector, pb.Hello(agent_id=args.agent, node_name=args.agent), spool,
                      max_items=10**6, max_age_s=3600, token=args.token)
    shipper.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    shipper.add(run_event(args.run, pb.PHASE_START))
    i = args.start
    while i < args.start + args.count and not stop.is_set():
        await shipper.wait_for_room()
        for _ in range(min(args.chunk, args.start + args.count - i)):
            shipper.add(record(args.run, i))
            i += 1
        await shipper.flush()
        print(f"sealed {i}", flush=True)
        try:
            await asyncio.wait_for(stop.wait(), args.pause_s)
        except asyncio.TimeoutError:
            pass
    shipper.add(run_event(args.run, pb.PHASE_END))
    shipper.seal()
    print(f"produced {i}", flush=True)
    try:
        await shipper.close(args.grace_s)
    except DeliveryIncomplete as exc:
        logging.getLogger("siliconbench.agent").error("%s", exc)
        return 3
    print("delivered", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--collector", required=True)
    parser.add_argument("--spool-dir", required=True)
    parser.add_argument("--agent", default="fault-agent")
    parser.add_argument("--run", required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--pause-s", type=float, default=0.05)
    parser.add_argument("--grace-s", type=float, default=30.0)
    parser.add_argument("--token", default=None)
    parser.add_argument("--spool-max-bytes", type=int, default=512 * 2**20)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(parser.parse_args())))
