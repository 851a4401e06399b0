"""Collector memory under many agents sending maximum-size batches at once.

N agents (one connection each, in this process) say Hello and write `--batches` batches of about
`--batch-mib` MiB each (request records of 128 chunks: the gRPC limit is 16 MiB) as fast as the
collector lets them, all at the same moment: as the shipper does, each batch is offered and sent once
the collector grants it (collector/budget.py); with `--no-offers`, as an agent older than that
handshake, each batch is written at once and only gRPC flow control holds it back. A thread samples the collector process's RSS every 20 ms.
After the last ack the collector stops and the stored requests are counted against those sent.

With `--hostile MODE` (`--hostile-streams` of them, beside the N honest agents that offer): `liars`
offer 100 B and send a full batch; `unannounced` send full batches without offering (as old agents, or
clients built from the .proto alone); `hoarders` offer 1 MiB and never send. Liars and hoarders say they
offer (`--hostile-undeclared`: they do not). All hostile streams are of one agent id unless
`--hostile-agents` (one id each). The line then adds the honest agents' slowest wait for a grant.

Prints per N: how batches were sent, peak and final collector RSS (MiB), seconds until the last ack, requests stored/sent.
The deployment limits the collector's container to 2 GiB (deploy/): the peak must stay below it.

    .venv/bin/python bench/collector_memory.py [--agents 10,100] [--batches 2] [--batch-mib 10.9]
                                               [--max-bytes-in-flight-mib 256] [--no-offers]
                                               [--hostile liars|unannounced|hoarders] [--hostile-streams 60]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

from ingest import build_batches  # noqa: E402  (the ingest bench's batch builder)

from siliconbench.agent.uplink import STREAM_METHOD  # noqa: E402
from siliconbench.core.wire import OFFERS_METADATA, pb  # noqa: E402
from tests.servers import start_collector  # noqa: E402

BYTES_PER_REQUEST = 716  # one 128-chunk record as build_batches frames it (measured)


async def agent(address: str, name: str, batches: list, offers: bool, waits: list[float]) -> None:
    async with grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", 16 * 2**20)]) as channel:
        call = channel.stream_stream(STREAM_METHOD, request_serializer=None, response_deserializer=pb.CollectorMessage.FromString)(
            metadata=(OFFERS_METADATA,) if offers else ())
        await call.write(pb.AgentMessage(hello=pb.Hello(agent_id=name, node_name=name)).SerializeToString())
        acked = 0
        grants: asyncio.Queue[int] = asyncio.Queue()

        async def replies() -> None:
            nonlocal acked
            async for message in call:
                if message.HasField("error"):
                    raise RuntimeError(f"{name}: {message.error.message}")
                if message.HasField("grant"):
                    grants.put_nowait(message.grant.seq)
                acked += message.HasField("ack")
                if acked == len(batches):
                    return

        reading = asyncio.create_task(replies())
        for seq, data, _requests, _rows in batches:
            if offers:
                offered = time.perf_counter()
                await call.write(pb.AgentMessage(offer=pb.Offer(seq=seq, bytes=len(data))).SerializeToString())
                assert await grants.get() == seq
                waits.append(time.perf_counter() - offered)
            await call.write(data)
        await reading
        await call.done_writing()


async def hostile(address: str, name: str, data: bytes, mode: str, declared: bool, stop: asyncio.Event) -> None:
    """One hostile stream (see the module docstring); it stays open until `stop`, or until the collector ends it."""
    async with grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", 16 * 2**20)]) as channel:
        call = channel.stream_stream(STREAM_METHOD, request_serializer=None, response_deserializer=pb.CollectorMessage.FromString)(
            metadata=(OFFERS_METADATA,) if declared else ())
        try:
            await call.write(pb.AgentMessage(hello=pb.Hello(agent_id=name, node_name=name)).SerializeToString())
            if mode != "unannounced":
                size = 100 if mode == "liars" else 2**20
                await call.write(pb.AgentMessage(offer=pb.Offer(seq=1, bytes=size)).SerializeToString())
            if mode != "hoarders":
                await call.write(data)
            ended = asyncio.ensure_future(stop.wait())
            await asyncio.wait((ended, asyncio.ensure_future(call.code())), return_when=asyncio.FIRST_COMPLETED)
        except grpc.aio.AioRpcError:
            pass  # ended by the collector


def sample_rss(pid: int, peak: list[int], stop: threading.Event) -> None:
    process = psutil.Process(pid)
    while not stop.wait(0.02):
        try:
            peak[0] = max(peak[0], process.memory_info().rss)
        except psutil.NoSuchProcess:
            return


def measure(n_agents: int, args: argparse.Namespace) -> None:
    requests = int(args.batch_mib * 2**20 / BYTES_PER_REQUEST)
    loads = [build_batches(f"mem-agent-{a:04d}", f"mem-{n_agents}", args.batches, requests, 0) for a in range(n_agents)]
    size_mib = len(loads[0][0][1]) / 2**20
    # each hostile stream's batch is a batch of its own (a run the count below leaves out), stored if read
    hostile_batches = [build_batches(f"hostile-{h:04d}", "mem-hostile", 1, requests, 0)[0][1]
                       for h in range(args.hostile_streams if args.hostile else 0)]
    with tempfile.TemporaryDirectory(prefix="sb-mem-") as tmp:
        store = f"chdb://{tmp}/store"
        extra = ["--max-bytes-in-flight-mib", str(args.max_bytes_in_flight_mib)] if args.max_bytes_in_flight_mib else []
        collector = start_collector(store, Path(tmp) / "collector.log", *extra)
        pid = collector.popen.pid
        peak, stop, waits = [0], threading.Event(), []
        try:
            idle = psutil.Process(pid).memory_info().rss
            sampler = threading.Thread(target=sample_rss, args=(pid, peak, stop), daemon=True)
            sampler.start()
            began = time.perf_counter()

            async def everyone() -> None:
                stop = asyncio.Event()
                hostiles = [asyncio.create_task(hostile(
                    collector.address, f"hostile-{h if args.hostile_agents else 0}", data, args.hostile,
                    not args.hostile_undeclared, stop)) for h, data in enumerate(hostile_batches)]
                await asyncio.sleep(0.5 if hostiles else 0)  # the hostile streams first
                await asyncio.gather(*(agent(collector.address, f"mem-agent-{a:04d}", load, not args.no_offers, waits)
                                       for a, load in enumerate(loads)))
                stop.set()
                await asyncio.gather(*hostiles)

            asyncio.run(everyone())
            took = time.perf_counter() - began
            final = psutil.Process(pid).memory_info().rss
        finally:
            stop.set()
            collector.stop(60)
        stored = subprocess.run([sys.executable, "-m", "siliconbench.collector", "sql",
                                 f"SELECT count() FROM siliconbench.requests WHERE run_id = 'mem-{n_agents}'",
                                 "--store", store], capture_output=True, text=True, cwd=REPO, check=True)
        count = int(stored.stdout.strip().splitlines()[1])
    sent = n_agents * args.batches * requests
    admission = "sent unannounced" if args.no_offers else "offered, sent when granted"
    if args.hostile:
        admission += (f", beside {args.hostile_streams} {args.hostile} of {args.hostile_streams if args.hostile_agents else 1} "
                      f"agent ids (slowest grant {max(waits, default=0):.2f} s)")
    print(f"| {n_agents} | {admission} | {args.batches} x {size_mib:.1f} MiB | {idle / 2**20:,.0f} | {peak[0] / 2**20:,.0f} | "
          f"{final / 2**20:,.0f} | {took:.1f} | {count:,} / {sent:,} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default="10,100")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--batch-mib", type=float, default=10.9)
    parser.add_argument("--max-bytes-in-flight-mib", type=int, default=0, help="0: the collector's default")
    parser.add_argument("--no-offers", action="store_true", help="send batches unannounced, as older agents do")
    parser.add_argument("--hostile", choices=("liars", "unannounced", "hoarders"))
    parser.add_argument("--hostile-streams", type=int, default=60)
    parser.add_argument("--hostile-agents", action="store_true", help="one agent id per hostile stream")
    parser.add_argument("--hostile-undeclared", action="store_true", help="hostile streams do not say they offer")
    args = parser.parse_args()
    print("| agents | batches | batches each | idle RSS MiB | peak RSS MiB | final RSS MiB | seconds | requests stored / sent |")
    print("|---:|---|---|---:|---:|---:|---:|---|")
    for n in (int(x) for x in args.agents.split(",")):
        measure(n, args)


if __name__ == "__main__":
    main()
