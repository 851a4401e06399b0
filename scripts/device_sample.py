"""Record the agent's NVML sampling for a while, as the agent runs it, to a JSON-lines file.

    python scripts/device_sample.py --phase idle --seconds 20 --interval-s 0.1 --out samples-idle.jsonl

The agent's own path: `SamplerRunner` polls an `NvmlSampler` on its thread and hands every poll to an
asyncio loop as wire messages (`pb.DeviceSample`); here the loop writes them out instead of shipping them.
Lines, each a JSON object with "kind":
  meta      the phase, interval, driver, devices (once, first)
  sample    one device's reading of one poll: poll number, time_unix_ns, device, values
  log       every log line of the agent's loggers (e.g. "nvml: GPU 0: power not supported ...")
  summary   wall and CPU time over the sampling window, and the NVML read cost per poll (once, last)
Exit 2 with one line on stderr when NVML cannot start (no driver, no GPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import IO

from siliconbench.agent.samplers.base import Sample, SamplerUnavailable
from siliconbench.agent.samplers.nvml import NvmlSampler
from siliconbench.agent.samplers.runner import SamplerRunner
from siliconbench.core.wire import pb


class TimedSampler:
    """An `NvmlSampler` whose full polls are timed: wall time and the polling thread's CPU time per call."""

    def __init__(self, inner: NvmlSampler) -> None:
        self.inner = inner
        self.name = inner.name
        self.poll_wall_ns: list[int] = []
        self.poll_cpu_ns: list[int] = []

    def open(self) -> None:
        self.inner.open()

    def sample(self) -> list[Sample]:
        wall0, cpu0 = time.perf_counter_ns(), time.thread_time_ns()
        samples = self.inner.sample()
        self.poll_cpu_ns.append(time.thread_time_ns() - cpu0)
        self.poll_wall_ns.append(time.perf_counter_ns() - wall0)
        return samples

    def counters(self) -> list[Sample]:
        return self.inner.counters()

    def close(self) -> None:
        self.inner.close()


class _Collect(logging.Handler):
    """Keeps the agent's log lines (some come from the polling thread) to be written after sampling."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append({"kind": "log", "level": record.levelname, "logger": record.name,
                           "message": record.getMessage()})


async def record(phase: str, seconds: float, interval_s: float, out: IO[str]) -> dict:
    nvml = NvmlSampler()
    nvml.open()  # fails here, before any file content, when there is no driver
    timed = TimedSampler(nvml)
    out.write(json.dumps({"kind": "meta", "phase": phase, "interval_s": interval_s, "seconds": seconds,
                          "driver": nvml.device_info().driver_version,
                          "devices": [{"index": d.index, "name": d.name, "uuid": d.uuid,
                                       "mem_total_bytes": d.mem_total_bytes} for d in nvml.devices]}) + "\n")
    polls = 0

    def emit(batch: list[pb.DeviceSample]) -> None:
        nonlocal polls
        polls += 1
        for s in batch:
            out.write(json.dumps({"kind": "sample", "phase": phase, "poll": polls, "time_unix_ns": s.time_unix_ns,
                                  "source": s.source, "device": s.device, "values": dict(s.values)}) + "\n")

    runner = SamplerRunner([timed], interval_s, asyncio.get_running_loop(), emit)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    runner.start()
    await asyncio.sleep(seconds)
    runner.stop()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await asyncio.sleep(0)  # deliver the last poll's emit
    return {"kind": "summary", "phase": phase, "wall_s": wall, "process_cpu_s": cpu, "polls": polls,
            "poll_wall_ms": [ns / 1e6 for ns in timed.poll_wall_ns],
            "poll_cpu_ms": [ns / 1e6 for ns in timed.poll_cpu_ns]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", required=True, help="label written on every line, e.g. idle or load")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval-s", type=float, default=0.1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    with args.out.open("w") as out:
        handler = _Collect()
        agent_log = logging.getLogger("siliconbench.agent")
        agent_log.addHandler(handler)
        agent_log.setLevel(logging.DEBUG)
        try:
            summary = asyncio.run(record(args.phase, args.seconds, args.interval_s, out))
        except SamplerUnavailable as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        finally:
            agent_log.removeHandler(handler)
            for line in handler.lines:
                out.write(json.dumps(line) + "\n")
        out.write(json.dumps(summary) + "\n")
    print(f"{args.phase}: {summary['polls']} polls in {summary['wall_s']:.1f} s, "
          f"process CPU {100 * summary['process_cpu_s'] / summary['wall_s']:.2f} % of a core -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
