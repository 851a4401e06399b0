"""How soon a step's results are kept: the time from the ack of a step's last batch to its kept results,
through a real collector process on embedded chDB.

One agent streams steps of N requests through real gRPC (the offer/grant protocol; batches of 2,000
requests, as the shipper seals them at most, each sent once the previous one is acknowledged; each request
8-32 chunks, a closed loop of 32 streams) into a collector that keeps step results (collector/kept.py). The
batch that closes a step carries its `steps` row: once it is acknowledged, the step is over and its rows
are complete. The bench then leaves the collector alone for --gap-s (nothing polls it: a read command run
by the serving collector reopens the store, some 0.6-1.6 s of its CPU here) before the next step. Once the
collector has stopped, the bench reads when the keeper began and ended each step:

- last ack -> keeping began: kept_steps' kept_at (the collector's clock as its insert began: the keeper's
  linger, 50 ms, and its due query);
- last ack -> kept: the time of the keeper's log line for the pass that kept the step (`--verbose`), written
  once both tables (kept_steps, kept_answers) are stored;

and then times keeping each step again on the store alone, warm as the serving collector was (`kept.keep`,
the keeper's own call: both inserts).
Target: under 1 s from the last record to the kept results at 100,000 requests per step.

    .venv/bin/python bench/keep_latency.py [--requests 20000,100000] [--steps 3] [--gap-s 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "proto"))

from siliconbench.agent.batcher import REQUESTS_TAG, RUNS_TAG, STEPS_TAG  # noqa: E402
from siliconbench.agent.uplink import STREAM_METHOD  # noqa: E402
from siliconbench.collector import kept  # noqa: E402
from siliconbench.collector.store import Store  # noqa: E402
from siliconbench.core.framing import BATCH_TAG, delimited  # noqa: E402
from siliconbench.core.wire import pb  # noqa: E402
from tests.servers import start_collector  # noqa: E402

AGENT = "keep-bench-agent"
BATCH_REQUESTS = 2000  # the shipper's max_items: the largest batch an agent seals
CONCURRENCY = 32


def step_batches(run_id: str, step: int, requests: int, seq0: int, rng: random.Random) -> list[bytes]:
    """The step's batches, framed as the agent sends them; the last carries the step's `steps` row (and
    the first step's first, the run's start)."""
    t0 = time.time_ns()
    slot_free = [t0] * CONCURRENCY  # a closed loop: each request starts when its slot's previous one ended
    records = []
    for i in range(requests):
        chunks = rng.randint(8, 32)
        ttft = rng.randint(30, 300) * 10**6
        offsets = [ttft]
        for _ in range(chunks - 1):
            offsets.append(offsets[-1] + rng.randint(5, 40) * 10**6)
        slot = i % CONCURRENCY
        start = slot_free[slot]
        slot_free[slot] = start + offsets[-1] + 10**6
        records.append(pb.RequestRecord(
            run_id=run_id, request_id=f"{run_id}/{step}/{i}", step=step, concurrency=CONCURRENCY,
            start_unix_ns=start, ttft_ns=ttft, e2e_ns=offsets[-1] + 10**6, chunk_offset_ns=offsets,
            chunk_tokens=[rng.randint(1, 3) for _ in offsets], prompt_tokens=512, output_tokens=chunks * 2,
            max_tokens=64, http_status=200, finish_reason="length").SerializeToString())
    out = []
    for n, first in enumerate(range(0, requests, BATCH_REQUESTS)):
        seq = seq0 + n
        parts = [pb.Batch(seq=seq, batch_id=f"{AGENT}/keep/{run_id}/{seq}").SerializeToString()]
        if seq == 1:
            parts.append(delimited(RUNS_TAG, pb.RunEvent(run_id=run_id, phase=pb.PHASE_START, time_unix_ns=t0,
                                                         target_url="http://sim:8000", model="sim", simulated=True,
                                                         scenario="keep").SerializeToString()))
        parts += [delimited(REQUESTS_TAG, r) for r in records[first:first + BATCH_REQUESTS]]
        if first + BATCH_REQUESTS >= requests:
            parts.append(delimited(STEPS_TAG, pb.StepEvent(
                run_id=run_id, step=step, concurrency=CONCURRENCY, start_unix_ns=t0, end_unix_ns=max(slot_free),
                requests=requests, mode="closed").SerializeToString()))
        out.append(delimited(BATCH_TAG, b"".join(parts)))
    return out


class Stream:
    """One agent's stream: each batch offered, sent once granted, and waited for until acknowledged."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._call = channel.stream_stream(STREAM_METHOD, request_serializer=None,
                                           response_deserializer=pb.CollectorMessage.FromString)()
        self._seq = 0

    async def hello(self) -> None:
        await self._call.write(pb.AgentMessage(hello=pb.Hello(agent_id=AGENT, node_name=AGENT)).SerializeToString())

    async def send(self, data: bytes) -> None:
        """Send the next batch; return once it is acknowledged."""
        self._seq += 1
        await self._call.write(pb.AgentMessage(offer=pb.Offer(seq=self._seq, bytes=len(data))).SerializeToString())
        while True:
            message = await self._call.read()
            if message.HasField("grant"):
                await self._call.write(data)
            elif message.HasField("ack") and message.ack.seq == self._seq:
                return
            elif message.HasField("error"):
                raise RuntimeError(f"batch {self._seq} refused: {message.error}")

    async def close(self) -> None:
        await self._call.done_writing()


async def stream_steps(port: int, run_id: str, requests: int, steps: int, gap_s: float,
                       rng: random.Random) -> list[int]:
    """Stream `steps` steps of `requests` requests, `gap_s` apart; per step, when its last batch was acked
    (Unix ns)."""
    acked = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stream = Stream(channel)
        await stream.hello()
        seq = 1
        for step in range(steps):
            batches = step_batches(run_id, step, requests, seq, rng)
            seq += len(batches)
            for data in batches:
                await stream.send(data)
            acked.append(time.time_ns())
            await asyncio.sleep(gap_s)  # the keeper keeps the step meanwhile; nothing else loads the collector
        await stream.close()
    return acked


_KEPT_AT = """SELECT step, toUnixTimestamp64Nano(min(kept_at)) FROM {db}.kept_steps
WHERE run_id = {run:String} AND step_rows = {rows:UInt64} GROUP BY step ORDER BY step"""
_KEPT_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) DEBUG \S+: keeper: kept ([1-9]\d*) step")


def began_at(store: Store, run_id: str, requests: int) -> dict[int, int]:
    """step -> when the keeper began storing it complete (kept_at: the collector's clock as the insert began)."""
    rows = store.query(_KEPT_AT, {"run": run_id, "rows": requests}).result_rows
    return {int(step): int(at) for step, at in rows}


def kept_at(log: Path) -> list[int]:
    """When each keeper pass that kept steps ended (ns, wall clock; its log line's time, to the ms), in order:
    one step a pass here, the steps seconds apart."""
    return [int(dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() * 1e9)
            for line in log.read_text().splitlines() if (m := _KEPT_LINE.match(line))]


def measure(requests: int, steps: int, gap_s: float) -> dict:
    rng = random.Random(requests)
    run_id = f"keep-{requests}"
    with tempfile.TemporaryDirectory(prefix="sb-keep-") as tmp:
        dsn = f"chdb://{tmp}/store"
        log = Path(tmp) / "collector.log"
        collector = start_collector(dsn, log, "--verbose")
        try:
            acked = asyncio.run(stream_steps(collector.port, run_id, requests, steps, gap_s, rng))
        finally:
            collector.stop(60)
        ended = kept_at(log)
        store = Store.open_existing(dsn)
        try:
            began = began_at(store, run_id, requests)
            missing = [step for step in range(steps) if step not in began]
            if missing or len(ended) != steps:
                raise SystemExit(f"steps {missing or list(range(len(ended), steps))} of {requests:,} requests were "
                                 f"not kept within {gap_s:g} s (see {log})")
            kept.keep(store, [(run_id, AGENT, 0)])  # warm, as the serving collector was (a reopened store loads its parts)
            keeping = [kept.keep(store, [(run_id, AGENT, step)]).seconds for step in range(steps)]
        finally:
            store.close()
    return {"requests": requests, "steps": steps, "keeping": keeping,
            "began": [(began[step] - acked[step]) / 1e9 for step in range(steps)],
            "kept": [(ended[step] - acked[step]) / 1e9 for step in range(steps)]}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s | {max(values):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", default="20000,100000", help="requests per step, comma-separated")
    parser.add_argument("--steps", type=int, default=3, help="steps measured at each size")
    parser.add_argument("--gap-s", type=float, default=3.0, help="seconds between one step's last ack and the next step")
    args = parser.parse_args()
    results = []
    for n in args.requests.split(","):
        print(f"{int(n):,} requests per step: streaming {args.steps} step(s) ...", file=sys.stderr)
        results.append(measure(int(n), args.steps, args.gap_s))
    print(f"\none agent, batches of {BATCH_REQUESTS:,} requests (8-32 chunks each) sent as fast as acknowledged, "
          f"steps {args.gap_s:g} s apart; {os.cpu_count()} CPUs (bench and collector share them)")
    print("| requests per step | steps | last ack -> keeping began, p50 | max | last ack -> kept (both tables), p50 | "
          "max | keeping one step again, warm, p50 | max |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['requests']:,} | {r['steps']} | {spread(r['began'])} | {spread(r['kept'])} | "
              f"{spread(r['keeping'])} |")


if __name__ == "__main__":
    main()
